"""GPU benchmark: the flagship Xception job (examples/flowers-xception.yaml) on local synthetic images, with
mixed precision and XLA on and off, the tutorial loop beside it.

``python -m bench.gpu``          on any machine with an NVIDIA GPU (several: Headstart mirrors over them)
``python -m bench.gpu --cpu``    the smoke mode: no GPU, tiny sizes; checks the script, measures nothing

For each runtime configuration (fp32, mp = mixed_float16, xla = jit_compile, mp+xla) the same FineTuneJob
runs through Headstart (stage 1: head on the frozen base, SGD 0.2; stage 2: everything, SGD 0.01), and the
tutorial's plain ``fit`` loop runs for the configurations in ``--tutorial-configs``. Reports images per
second of each stage (train images x epochs / stage seconds) and ends with one JSON line. Nothing is
downloaded: random weights unless ``--weights imagenet`` finds them cached.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
from pathlib import Path
from typing import Any

CONFIGS = {"fp32": {"mixedPrecision": False, "xla": False}, "mp": {"mixedPrecision": True, "xla": False},
           "xla": {"mixedPrecision": False, "xla": True}, "mp+xla": {"mixedPrecision": True, "xla": True}}
SMOKE = {"size": 71, "photo": "96x72", "per_class": 6, "batch": 4, "frozen_epochs": 1, "finetune_epochs": 1}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.gpu", description=__doc__.split("\n\n")[0])
    p.add_argument("--cpu", action="store_true", help="smoke mode: no GPU, tiny sizes (checks the script only)")
    p.add_argument("--application", default="Xception", help="keras.applications base (default Xception)")
    p.add_argument("--weights", choices=("none", "imagenet"), default="none",
                   help="none (default, random weights) or imagenet (from $KERAS_HOME/models when cached)")
    p.add_argument("--size", type=int, default=None, help="input side (default 299; --cpu: 71)")
    p.add_argument("--photo", default=None, help="stored JPEG size WxH (default 320x240; --cpu: 96x72)")
    p.add_argument("--classes", type=int, default=5, help="classes (default 5, as tf_flowers)")
    p.add_argument("--per-class", type=int, default=None, help="images per class (default 400; --cpu: 6)")
    p.add_argument("--validation", type=float, default=0.1, help="validation fraction (default 0.1)")
    p.add_argument("--batch", type=int, default=None, help="batch size per GPU (default 32; --cpu: 4)")
    p.add_argument("--frozen-epochs", type=int, default=None, help="stage 1 epochs (default 3; --cpu: 1)")
    p.add_argument("--finetune-epochs", type=int, default=None, help="stage 2 epochs (default 2; --cpu: 1)")
    p.add_argument("--configs", default=",".join(CONFIGS), help=f"Headstart runs (default {','.join(CONFIGS)})")
    p.add_argument("--tutorial-configs", default="fp32,mp+xla",
                   help="tutorial runs (default fp32,mp+xla; '' for none)")
    from . import trainer  # the bench's shared parts (no TensorFlow at import)

    trainer.add_optimizers(p, frozen=("SGD", 0.2), finetune=("SGD", 0.01))  # the seed job's
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workdir", default=None, help="where images and outputs go (default: a temporary dir)")
    args = p.parse_args(argv)
    defaults = {"size": 299, "photo": "320x240", "per_class": 400, "batch": 32, "frozen_epochs": 3,
                "finetune_epochs": 2}
    for name, value in (SMOKE if args.cpu else defaults).items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    for flag in ("configs", "tutorial_configs"):
        names = [c for c in getattr(args, flag).split(",") if c]
        unknown = [c for c in names if c not in CONFIGS]
        if unknown:
            p.error(f"--{flag.replace('_', '-')}: unknown {', '.join(unknown)} (choose from {', '.join(CONFIGS)})")
        setattr(args, flag, names)
    if not args.configs:
        p.error("--configs: at least one configuration")
    try:
        w, h = (int(v) for v in args.photo.lower().split("x"))
    except ValueError:
        p.error(f"--photo {args.photo!r}: expected WIDTHxHEIGHT, e.g. 320x240")
    args.photo_wh = (w, h)
    for name in ("size", "per_class", "batch", "frozen_epochs", "finetune_epochs"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    if not 0 < args.validation < 1:
        p.error("--validation must be a fraction between 0 and 1")
    args.base = "random"
    args.frozen_only = False
    return args


def gpu_names() -> list[str]:
    import tensorflow as tf

    names = []
    for gpu in tf.config.list_physical_devices("GPU"):
        try:
            names.append(tf.config.experimental.get_device_details(gpu).get("device_name") or gpu.name)
        except (ValueError, RuntimeError):
            names.append(gpu.name)
    return names


def rates(n_train: int, args: argparse.Namespace, times: dict) -> dict:
    out = {}
    for stage, epochs in (("frozen", args.frozen_epochs), ("finetune", args.finetune_epochs)):
        seconds = times[f"{stage}_s"]
        out[f"{stage}_s"] = round(seconds, 2)
        out[f"{stage}_img_s"] = round(n_train * epochs / seconds, 1)
    out["val_acc_frozen"] = round(times["val_acc_frozen"], 4)
    out["val_acc"] = round(times["val_acc"], 4)
    return out


def run(args: argparse.Namespace, work: Path) -> dict:
    import keras

    from . import trainer
    from .images import CLASS_NAMES, split_like_trainer, write_folder

    if args.classes > len(CLASS_NAMES):
        raise SystemExit(f"error: --classes: at most {len(CLASS_NAMES)}")
    folder = work / "images"
    shutil.rmtree(folder, ignore_errors=True)
    w, h = args.photo_wh
    write_folder(folder, args.per_class, args.classes, h, w, seed=args.seed)
    parts = split_like_trainer(folder, args.validation, args.seed)
    n_train = len(parts["train"])
    weights = None if args.weights == "none" else "imagenet"
    results: dict[str, Any] = {}
    for name in args.configs:
        hs = trainer.headstart(args, folder, work / f"out-{name}", weights, "off", runtime=CONFIGS[name])
        results[name] = {"headstart": {**rates(n_train, args, hs), "replicas": hs["replicas"]}}
        print(f"headstart {name}: {results[name]['headstart']}", flush=True)
        trainer._fresh()
    for name in args.tutorial_configs:
        keras.mixed_precision.set_global_policy("mixed_float16" if CONFIGS[name]["mixedPrecision"] else "float32")
        try:
            tutorial = trainer.baseline(args, parts, args.classes, weights, jit_compile=CONFIGS[name]["xla"])
        finally:
            keras.mixed_precision.set_global_policy("float32")
        results.setdefault(name, {})["tutorial"] = rates(n_train, args, tutorial)
        print(f"tutorial {name}: {results[name]['tutorial']}", flush=True)
        trainer._fresh()
    return {"train_images": n_train, "val_images": len(parts["validation"]), "results": results}


def show(args: argparse.Namespace, summary: dict) -> None:
    from rich.console import Console
    from rich.table import Table

    devices = ", ".join(summary["devices"]) or "CPU (smoke mode: not a GPU figure)"
    table = Table(title=f"{args.application} {args.size}px, {summary['train_images']} train images, batch "
                        f"{args.batch}, {devices}")
    for c in ("config", "side", "frozen img/s", "fine-tune img/s", "val acc frozen / fine-tuned"):
        table.add_column(c, justify="left" if c in ("config", "side") else "right")
    for name, sides in summary["results"].items():
        for side, r in sides.items():
            table.add_row(name, side, f"{r['frozen_img_s']:.1f}", f"{r['finetune_img_s']:.1f}",
                          f"{r['val_acc_frozen']:.3f} / {r['val_acc']:.3f}")
    Console().print(table)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    if args.cpu:
        os.environ["CUDA_VISIBLE_DEVICES"] = ""  # before TensorFlow starts
    from . import environment

    devices = gpu_names()
    if not args.cpu and not devices:
        print("error: TensorFlow sees no GPU (check nvidia-smi and a CUDA build of TensorFlow); "
              "`python -m bench.gpu --cpu` runs the smoke mode", file=sys.stderr)
        return 2
    machine = environment.describe()
    scratch = None if args.workdir else tempfile.mkdtemp(prefix="headstart-bench-gpu-")
    work = Path(args.workdir or scratch)
    try:
        summary = {"mode": "cpu-smoke" if args.cpu else "gpu", "devices": devices, "application": args.application,
                   "weights": args.weights, "size": args.size, "batch": args.batch,
                   "frozen_epochs": args.frozen_epochs, "finetune_epochs": args.finetune_epochs,
                   **run(args, work)}
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    show(args, summary)
    summary["machine"] = {**machine, "load_after": environment.load()}
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
