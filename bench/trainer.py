"""Benchmark: the classic transfer-learning tutorial loop against the same job run by Headstart, beside the
floor a frozen stage cannot go below.

``python -m bench.trainer [--application ResNet50] [--per-class 130] [--size 128] ...``
``python -m bench.trainer --frozen-only --repeat 5 [--cpu-bfloat16 both]``   (the floor ratio, several times)
``python -m bench.trainer --sweep 8 --repeat 3``   (a head sweep against one frozen stage: bench.sweep)

Both sides get the same image folder (synthetic JPEG photos), the same train/validation split, the same
base, head, optimizers, epochs and batch size:

* stage 1: base frozen, Adam lr 0.001;  * stage 2: base unfrozen, Adam lr 0.00001 (the Keras guide's choices;
  the tutorial's SGD 0.2 then 0.01, momentum 0.9, is ``--frozen-optimizer SGD --frozen-lr 0.2
  --finetune-optimizer SGD --finetune-lr 0.01``: its fine-tune stage diverges on this bench's bases).

The base (nothing can be downloaded here) is pretrained by bench.pretrain on the bench's other synthetic
classes, never on the images of the bench's task, and cached, so both stages' accuracies mean something;
``--base calibrated`` (random weights, BatchNormalization statistics of the training images) and
``--base random`` are the bases of earlier runs. The tutorial is written as the tutorial writes it: decoded images
-> ``shuffle(1000).map(preprocess).batch(32).prefetch(1)``, one model from ``base.input`` to a softmax, plain
``fit`` (the frozen base recomputed every epoch). The floor (bench.floor.Floor) decodes and resizes every
image once and runs one forward pass of the base; it is measured before the tutorial and again after
Headstart, and the ratio uses their mean. Prints a table per stage, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from . import environment, sweep
from .floor import Floor, calibrate, warm_floor
from .pretrain import SOURCE_FIRST, pretrained


def add_optimizers(p: argparse.ArgumentParser, frozen: tuple[str, float] = ("Adam", 1e-3),
                   finetune: tuple[str, float] = ("Adam", 1e-5)) -> None:
    """The stages' optimizers and learning rates, read by ``baseline`` and ``headstart`` (bench.gpu shares
    them with the seed job's SGD as its defaults). SGD has momentum 0.9."""
    for stage, (kind, lr), what in (("frozen", frozen, "stage 1"), ("finetune", finetune, "stage 2")):
        p.add_argument(f"--{stage}-optimizer", choices=("Adam", "SGD"), default=kind,
                       help=f"{what} optimizer (default {kind})")
        p.add_argument(f"--{stage}-lr", type=float, default=lr, help=f"{what} learning rate (default {lr:g})")


def keras_optimizer(kind: str, lr: float) -> Any:
    import keras

    return keras.optimizers.SGD(learning_rate=lr, momentum=0.9) if kind == "SGD" else keras.optimizers.Adam(lr)


def optimizer_spec(kind: str, lr: float) -> dict:
    return {"type": kind, "learningRate": lr, **({"momentum": 0.9} if kind == "SGD" else {})}


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.trainer", description=__doc__.split("\n\n")[0])
    p.add_argument("--application", default="ResNet50",
                   help="keras.applications base (default ResNet50; Xception, the tutorial's, is slow on CPU)")
    p.add_argument("--base", choices=("pretrained", "calibrated", "random"), default="pretrained",
                   help="pretrained on other classes (default; made once, then cached), random weights with "
                   "BatchNormalization statistics of the training images, or plain random weights")
    p.add_argument("--source-per-class", type=int, default=100,
                   help="--base pretrained: source images per class (default 100)")
    p.add_argument("--source-epochs", type=int, default=3, help="--base pretrained: epochs (default 3)")
    p.add_argument("--source-lr", type=float, default=1e-3,
                   help="--base pretrained: Adam learning rate (default 0.001)")
    p.add_argument("--size", type=int, default=128, help="model input side in pixels (default 128)")
    p.add_argument("--photo", default="320x240", help="stored JPEG size WxH (default 320x240)")
    p.add_argument("--classes", type=int, default=3, help="classes (default 3)")
    p.add_argument("--per-class", type=int, default=130, help="images per class (default 130)")
    p.add_argument("--validation", type=float, default=0.25, help="validation fraction (default 0.25)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--frozen-epochs", type=int, default=5, help="stage 1 epochs (default 5)")
    p.add_argument("--finetune-epochs", type=int, default=2, help="stage 2 epochs (default 2)")
    add_optimizers(p)
    p.add_argument("--frozen-only", action="store_true",
                   help="only the floor and Headstart's frozen stage, alternately (--repeat times): no tutorial")
    p.add_argument("--repeat", type=int, default=1,
                   help="rounds of floor + Headstart (--frozen-only) or of one frozen stage + its sweep (--sweep)")
    sweep.add_arguments(p)
    p.add_argument("--cpu-bfloat16", choices=("auto", "on", "off", "both"), default="off",
                   help="HEADSTART_CPU_BFLOAT16 for Headstart's runs; both: each round runs off, then on")
    p.add_argument("--seed", type=int, default=42)
    p.add_argument("--workdir", default=None, help="where images and outputs go (default: a temporary dir)")
    args = p.parse_args(argv)
    try:
        w, h = (int(v) for v in args.photo.lower().split("x"))
    except ValueError:
        p.error(f"--photo {args.photo!r}: expected WIDTHxHEIGHT, e.g. 320x240")
    args.photo_wh = (w, h)
    from .images import CLASS_NAMES

    if not 2 <= args.classes <= len(CLASS_NAMES):
        p.error(f"--classes must be from 2 to {len(CLASS_NAMES)}")
    if args.base == "pretrained" and args.classes > SOURCE_FIRST:
        p.error(f"--base pretrained: --classes must be at most {SOURCE_FIRST} (the other classes are the base's "
                "source task)")
    if not 0 < args.validation < 1:
        p.error("--validation must be a fraction between 0 and 1")
    for name in ("size", "per_class", "batch", "frozen_epochs", "finetune_epochs", "repeat", "source_per_class",
                 "source_epochs"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
    for name in ("frozen_lr", "finetune_lr", "source_lr"):
        if not getattr(args, name) > 0:
            p.error(f"--{name.replace('_', '-')} must be above 0")
    if args.repeat > 1 and not (args.frozen_only or args.sweep):
        p.error("--repeat needs --frozen-only or --sweep")
    sweep.check_arguments(p, args)
    args.frozen_only = args.frozen_only or bool(args.sweep)
    if args.cpu_bfloat16 == "both" and not args.frozen_only:
        p.error("--cpu-bfloat16 both needs --frozen-only")
    if min(w, h) < 1:
        p.error("--photo sides must be at least 1 pixel")
    return args


def _app(name: str) -> tuple[Any, Any]:
    import importlib

    import keras

    ctor = getattr(keras.applications, name, None)
    if ctor is None:
        print(f"error: keras.applications has no model {name!r}", file=sys.stderr)
        raise SystemExit(2)
    return ctor, importlib.import_module(ctor.__module__).preprocess_input


def _decoded(pairs: list[tuple[str, int]]) -> Any:
    """What TFDS hands the tutorial: decoded images and labels (decoding in a parallel map)."""
    import tensorflow as tf

    paths = [p for p, _ in pairs]
    labels = [y for _, y in pairs]

    def decode(path: Any, label: Any) -> tuple[Any, Any]:
        return tf.io.decode_jpeg(tf.io.read_file(path), channels=3), label

    return tf.data.Dataset.from_tensor_slices((paths, labels)).map(decode, num_parallel_calls=tf.data.AUTOTUNE)


def baseline(args: argparse.Namespace, parts: dict, classes: int, weights: str | None,
             jit_compile: bool = False) -> dict:
    """The tutorial's code, stage by stage (in the global dtype policy; ``jit_compile``: XLA)."""
    import keras
    import tensorflow as tf

    ctor, preprocess_input = _app(args.application)
    size = args.size

    def preprocess(image: Any, label: Any) -> tuple[Any, Any]:
        resized_image = tf.image.resize(image, [size, size])
        final_image = preprocess_input(resized_image)
        return final_image, label

    keras.utils.set_random_seed(args.seed)
    train_set = _decoded(parts["train"]).shuffle(1000, seed=args.seed).map(preprocess).batch(args.batch).prefetch(1)
    valid_set = _decoded(parts["validation"]).map(preprocess).batch(args.batch).prefetch(1)

    base_model = ctor(weights=weights, include_top=False, input_shape=(size, size, 3))
    avg = keras.layers.GlobalAveragePooling2D()(base_model.output)
    output = keras.layers.Dense(classes, activation="softmax", dtype="float32")(avg)
    model = keras.Model(inputs=base_model.input, outputs=output)

    for layer in base_model.layers:
        layer.trainable = False
    optimizer = keras_optimizer(args.frozen_optimizer, args.frozen_lr)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"],
                  jit_compile=jit_compile)
    t = time.perf_counter()
    h1 = model.fit(train_set, epochs=args.frozen_epochs, validation_data=valid_set, verbose=0)
    frozen = time.perf_counter() - t

    for layer in base_model.layers:
        layer.trainable = True
    optimizer = keras_optimizer(args.finetune_optimizer, args.finetune_lr)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"],
                  jit_compile=jit_compile)
    t = time.perf_counter()
    h2 = model.fit(train_set, epochs=args.finetune_epochs, validation_data=valid_set, verbose=0)
    finetune = time.perf_counter() - t
    return {"frozen_s": frozen, "finetune_s": finetune, "val_acc_frozen": h1.history["val_accuracy"][-1],
            "val_acc": h2.history["val_accuracy"][-1]}


def headstart(args: argparse.Namespace, folder: Path, output: Path, weights: str | None, bfloat16: str,
              runtime: dict | None = None, frozen: dict | None = None) -> dict:
    """The same job as a FineTuneJob through ``headstart.trainer.run_job``; stage times by wall clock and
    process CPU, from the reporter's stage start to its end (checkpoints included). ``runtime``: the spec's
    runtime section (mixedPrecision, xla); ``frozen``: fields that replace the frozen stage's (a sweep)."""
    from headstart.api import FineTuneJob
    from headstart.trainer import Reporter, run_job

    stages = [{"name": "frozen", "trainBase": "none", "epochs": args.frozen_epochs,
               "optimizer": optimizer_spec(args.frozen_optimizer, args.frozen_lr), **(frozen or {})}]
    if not args.frozen_only:
        stages.append({"name": "finetune", "trainBase": "all", "epochs": args.finetune_epochs,
                       "optimizer": optimizer_spec(args.finetune_optimizer, args.finetune_lr)})
    job = FineTuneJob.model_validate({
        "apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "bench"},
        "spec": {
            "baseModel": {"application": args.application, "weights": weights or "none",
                          "imageSize": [args.size] * 2},
            "head": {"pooling": "avg"},
            "dataset": {"imageFolder": {"uri": str(folder)}, "splits": {"validation": args.validation},
                        "batchSize": args.batch, "shuffleBuffer": 1000},
            "seed": args.seed,
            "stages": stages,
            "output": {"uri": str(output), "formats": ["keras"], "overwrite": True},
            **({"runtime": runtime} if runtime else {}),
        }})
    times: dict[str, Any] = {}

    class Clock(Reporter):
        def stage_started(self, stage: Any, initial_epoch: int, steps: int | None) -> None:
            times[stage.name] = (time.perf_counter(), time.process_time())

        def stage_ended(self, result: Any) -> None:
            t, c = times.pop(result.name)
            times[f"{result.name}_s"] = time.perf_counter() - t
            times[f"{result.name}_cpu_s"] = time.process_time() - c

    os.environ["HEADSTART_CPU_BFLOAT16"] = bfloat16
    t = time.perf_counter()
    result = run_job(job, str(output), Clock())
    times["total_s"] = time.perf_counter() - t
    by_name = {s.name: s for s in result.stages}
    out = {**times, "feature_cache": by_name["frozen"].feature_cache,
           "val_acc_frozen": by_name["frozen"].history["val_accuracy"][-1],
           "val_loss_frozen": by_name["frozen"].history["val_loss"][-1],
           "candidates": by_name["frozen"].candidates}
    if "finetune" in by_name:
        out["val_acc"] = by_name["finetune"].history["val_accuracy"][-1]
    metrics = json.loads((output / "metrics.json").read_text())
    out["feature_dtype"] = metrics.get("runtime", {}).get("feature_dtype", "float32")
    out["replicas"] = metrics.get("runtime", {}).get("replicas", 1)
    return out


def _fresh() -> None:
    """Drop the previous side's models and graphs so that neither side runs in the other's leftovers."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def measure_floor(args: argparse.Namespace, parts: dict, weights: str | None) -> dict:
    ctor, preprocess_input = _app(args.application)
    floor = Floor(ctor, preprocess_input, args.size, args.batch, weights)
    result = floor.measure(parts["train"] + parts["validation"])
    print(f"floor: {result['floor_s']:.1f}s (decode {result['decode_s']:.1f}s, forward {result['forward_s']:.1f}s; "
          f"cpu {result['floor_cpu_s']:.1f}s); before it: trace {result['trace_s']:.1f}s, first call "
          f"{result['first_call_s']:.1f}s", flush=True)
    del floor
    _fresh()
    return result


def report(args: argparse.Namespace, n_train: int, n_val: int, base: dict, hs: dict, floors: list[dict]) -> dict:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    floor_s = statistics.mean(f["floor_s"] for f in floors)
    floor_cpu = statistics.mean(f["floor_cpu_s"] for f in floors)
    rows = []
    for stage, epochs in (("frozen", args.frozen_epochs), ("finetune", args.finetune_epochs)):
        b, h = base[f"{stage}_s"], hs[f"{stage}_s"]
        rows.append((stage, epochs, b, h, b / h, n_train * epochs / b, n_train * epochs / h))
    table = Table(title=f"{args.application} {args.size}px ({args.base} base), {n_train} train + {n_val} "
                        f"validation images, batch {args.batch}, {os.cpu_count()} CPUs")
    for c in ("stage", "epochs", "tutorial", "headstart", "speedup", "tutorial img/s", "headstart img/s",
              "val acc: tutorial / headstart"):
        table.add_column(c, justify="left" if c == "stage" else "right")
    for (stage, epochs, b, h, ratio, bi, hi), key in zip(rows, ("val_acc_frozen", "val_acc")):
        table.add_row(stage, str(epochs), f"{b:.1f}s", f"{h:.1f}s", f"{ratio:.2f}x", f"{bi:.0f}", f"{hi:.0f}",
                      f"{base[key]:.3f} / {hs[key]:.3f}")
    console.print(table)
    before_after = " / ".join(f"{f['floor_s']:.1f}s" for f in floors)
    console.print(f"floor (decode + one forward pass over train+validation): "
                  f"{before_after} (before / after); headstart's frozen stage "
                  f"is {hs['frozen_s'] / floor_s:.2f}x the floor's mean (CPU time: "
                  f"{hs['frozen_cpu_s'] / floor_cpu:.2f}x; feature cache: {hs['feature_cache']}); "
                  f"{hs['frozen_s'] / warm_floor(floors):.2f}x the floor with its trace and first call")
    return {
        "application": args.application, "base": args.base, "size": args.size, "train_images": n_train,
        "val_images": n_val, "batch": args.batch, "frozen_epochs": args.frozen_epochs,
        "finetune_epochs": args.finetune_epochs, "frozen_optimizer": f"{args.frozen_optimizer} {args.frozen_lr:g}",
        "finetune_optimizer": f"{args.finetune_optimizer} {args.finetune_lr:g}",
        "baseline_frozen_s": round(base["frozen_s"], 2), "headstart_frozen_s": round(hs["frozen_s"], 2),
        "baseline_finetune_s": round(base["finetune_s"], 2), "headstart_finetune_s": round(hs["finetune_s"], 2),
        "floor_s": [round(f["floor_s"], 2) for f in floors], "decode_s": [round(f["decode_s"], 2) for f in floors],
        "frozen_speedup": round(rows[0][4], 2), "finetune_speedup": round(rows[1][4], 2),
        "frozen_floor_ratio": round(hs["frozen_s"] / floor_s, 3),
        "frozen_floor_cpu_ratio": round(hs["frozen_cpu_s"] / floor_cpu, 3),
        "frozen_warm_floor_ratio": round(hs["frozen_s"] / warm_floor(floors), 3),
        "val_acc_baseline_frozen": round(base["val_acc_frozen"], 4),
        "val_acc_headstart_frozen": round(hs["val_acc_frozen"], 4),
        "val_acc_baseline": round(base["val_acc"], 4), "val_acc_headstart": round(hs["val_acc"], 4),
        "headstart_job_s": round(hs["total_s"], 2), "feature_dtype": hs["feature_dtype"],
    }


def frozen_rounds(args: argparse.Namespace, parts: dict, folder: Path, work: Path, weights: str | None) -> dict:
    """--frozen-only: rounds of (floor, Headstart's frozen stage [, again in bfloat16]); medians of ratios."""
    modes = ["off", "on"] if args.cpu_bfloat16 == "both" else [args.cpu_bfloat16]
    rounds = []
    for r in range(args.repeat):
        floor = measure_floor(args, parts, weights)
        entry: dict[str, Any] = {"floor": floor}
        for mode in modes:
            hs = headstart(args, folder, work / "output", weights, mode)
            _fresh()
            entry[mode] = hs
            ratio, cpu = hs["frozen_s"] / floor["floor_s"], hs["frozen_cpu_s"] / floor["floor_cpu_s"]
            print(f"round {r + 1}: headstart ({mode}, {hs['feature_dtype']}) frozen {hs['frozen_s']:.1f}s = "
                  f"{ratio:.2f}x the floor (CPU {cpu:.2f}x; {hs['frozen_s'] / warm_floor([floor]):.2f}x with its "
                  f"trace and first call), val acc {hs['val_acc_frozen']:.3f}", flush=True)
        rounds.append(entry)
    summary: dict[str, Any] = {"application": args.application, "base": args.base, "size": args.size,
                               "train_images": len(parts["train"]), "val_images": len(parts["validation"]),
                               "frozen_epochs": args.frozen_epochs, "rounds": args.repeat,
                               "floor_s": [round(e["floor"]["floor_s"], 2) for e in rounds],
                               "decode_s": [round(e["floor"]["decode_s"], 2) for e in rounds],
                               "floor_warmup_s": [round(e["floor"]["trace_s"] + e["floor"]["first_call_s"], 2)
                                                  for e in rounds]}
    for mode in modes:
        ratios = [e[mode]["frozen_s"] / e["floor"]["floor_s"] for e in rounds]
        cpu = [e[mode]["frozen_cpu_s"] / e["floor"]["floor_cpu_s"] for e in rounds]
        warm = [e[mode]["frozen_s"] / warm_floor([e["floor"]]) for e in rounds]
        summary[mode] = {"feature_dtype": rounds[0][mode]["feature_dtype"],
                         "frozen_s": [round(e[mode]["frozen_s"], 2) for e in rounds],
                         "floor_ratio": [round(x, 3) for x in ratios],
                         "median_floor_ratio": round(statistics.median(ratios), 3),
                         "cpu_ratio": [round(x, 3) for x in cpu], "median_cpu_ratio": round(statistics.median(cpu), 3),
                         "median_warm_floor_ratio": round(statistics.median(warm), 3),
                         "val_acc_frozen": sorted({round(e[mode]["val_acc_frozen"], 4) for e in rounds})}
        print(f"headstart ({mode}): median {summary[mode]['median_floor_ratio']:.2f}x the floor over {args.repeat} "
              f"round(s) (CPU {summary[mode]['median_cpu_ratio']:.2f}x; "
              f"{summary[mode]['median_warm_floor_ratio']:.2f}x with the floor's trace and first call)", flush=True)
    return summary


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    ctor, preprocess_input = _app(args.application)  # an unknown application fails before any work
    import warnings

    # the tutorial's plain fit passes shuffle=True with a dataset, as the tutorial does; keras warns
    warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")
    from .images import split_like_trainer, write_folder

    scratch = None
    if args.workdir is None:
        scratch = tempfile.mkdtemp(prefix="headstart-bench-")
    work = Path(args.workdir or scratch)
    machine = environment.describe()
    try:
        folder = work / "images"
        shutil.rmtree(folder, ignore_errors=True)
        w, h = args.photo_wh
        write_folder(folder, args.per_class, args.classes, h, w, seed=args.seed)
        parts = split_like_trainer(folder, args.validation, args.seed)
        n_train, n_val = len(parts["train"]), len(parts["validation"])
        print(f"{n_train} train + {n_val} validation JPEGs ({w}x{h}) in {folder}", flush=True)
        weights, source = None, None
        if args.base == "calibrated":
            weights = calibrate(ctor, preprocess_input, args.size, parts["train"], work / "base.weights.h5", args.seed)
        elif args.base == "pretrained":
            weights, source = pretrained(args.application, ctor, preprocess_input, args.size, args.photo_wh,
                                         per_class=args.source_per_class, epochs=args.source_epochs,
                                         learning_rate=args.source_lr, seed=args.seed)
        _fresh()
        if args.sweep:
            summary = sweep.sweep_rounds(args, parts, folder, work, weights)
        elif args.frozen_only:
            summary = frozen_rounds(args, parts, folder, work, weights)
        else:
            # The floor first, in TensorFlow's default state (run_job then configures the process its own way:
            # seed, op determinism on CPU), and again after Headstart.
            floors = [measure_floor(args, parts, weights)]
            base = baseline(args, parts, args.classes, weights)
            print(f"tutorial: frozen {base['frozen_s']:.1f}s, fine-tune {base['finetune_s']:.1f}s", flush=True)
            _fresh()
            hs = headstart(args, folder, work / "output", weights, args.cpu_bfloat16)
            print(f"headstart: frozen {hs['frozen_s']:.1f}s, fine-tune {hs['finetune_s']:.1f}s", flush=True)
            _fresh()
            floors.append(measure_floor(args, parts, weights))
            summary = report(args, n_train, n_val, base, hs, floors)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    if source is not None:
        summary["source"] = source
    summary["machine"] = {**machine, "load_after": environment.load()}
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
