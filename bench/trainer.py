"""Benchmark: the classic transfer-learning tutorial loop against the same job run by Headstart.

``python -m bench.trainer [--application ResNet50] [--per-class 130] [--size 128] ...``

Both sides get the same image folder (synthetic JPEG photos), the same train/validation split, the same
base (random weights: nothing is downloaded), head, optimizers, epochs and batch size:

* stage 1: base frozen, SGD lr 0.2 momentum 0.9;  * stage 2: base unfrozen, SGD lr 0.01 momentum 0.9.

The baseline is written as the tutorial writes it: decoded images -> ``shuffle(1000).map(preprocess)
.batch(32).prefetch(1)`` with ``preprocess`` = resize + the application's preprocess_input, one model
from ``base.input`` to a softmax, plain ``fit`` (the frozen base recomputed every epoch). The floor is
one forward pass of the base over train + validation images already decoded and resized in memory:
what a frozen stage cannot go below. Prints a table per stage, then one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m bench.trainer", description=__doc__.split("\n\n")[0])
    p.add_argument("--application", default="ResNet50",
                   help="keras.applications base (default ResNet50: with random weights the features of MobileNet, "
                   "MobileNetV2 and EfficientNetB0 vanish; Xception, the tutorial's, is slow on CPU)")
    p.add_argument("--size", type=int, default=128, help="model input side in pixels (default 128)")
    p.add_argument("--photo", default="320x240", help="stored JPEG size WxH (default 320x240)")
    p.add_argument("--classes", type=int, default=3, help="classes (default 3)")
    p.add_argument("--per-class", type=int, default=130, help="images per class (default 130)")
    p.add_argument("--validation", type=float, default=0.25, help="validation fraction (default 0.25)")
    p.add_argument("--batch", type=int, default=32, help="batch size (default 32)")
    p.add_argument("--frozen-epochs", type=int, default=5, help="stage 1 epochs (default 5)")
    p.add_argument("--finetune-epochs", type=int, default=2, help="stage 2 epochs (default 2)")
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
    if not 0 < args.validation < 1:
        p.error("--validation must be a fraction between 0 and 1")
    for name in ("size", "per_class", "batch", "frozen_epochs", "finetune_epochs"):
        if getattr(args, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be at least 1")
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


def baseline(args: argparse.Namespace, parts: dict, classes: int) -> dict:
    """The tutorial's code, stage by stage."""
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

    base_model = ctor(weights=None, include_top=False, input_shape=(size, size, 3))
    avg = keras.layers.GlobalAveragePooling2D()(base_model.output)
    output = keras.layers.Dense(classes, activation="softmax")(avg)
    model = keras.Model(inputs=base_model.input, outputs=output)

    for layer in base_model.layers:
        layer.trainable = False
    optimizer = keras.optimizers.SGD(learning_rate=0.2, momentum=0.9)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    t = time.perf_counter()
    h1 = model.fit(train_set, epochs=args.frozen_epochs, validation_data=valid_set, verbose=0)
    frozen = time.perf_counter() - t

    for layer in base_model.layers:
        layer.trainable = True
    optimizer = keras.optimizers.SGD(learning_rate=0.01, momentum=0.9)
    model.compile(loss="sparse_categorical_crossentropy", optimizer=optimizer, metrics=["accuracy"])
    t = time.perf_counter()
    h2 = model.fit(train_set, epochs=args.finetune_epochs, validation_data=valid_set, verbose=0)
    finetune = time.perf_counter() - t
    return {"frozen_s": frozen, "finetune_s": finetune, "val_acc_frozen": h1.history["val_accuracy"][-1],
            "val_acc": h2.history["val_accuracy"][-1]}


def headstart(args: argparse.Namespace, folder: Path, output: Path) -> dict:
    """The same job as a FineTuneJob through ``headstart.trainer.run_job``; stage times by wall clock."""
    from headstart.api import FineTuneJob
    from headstart.trainer import Reporter, run_job

    job = FineTuneJob.model_validate({
        "apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "bench"},
        "spec": {
            "baseModel": {"application": args.application, "weights": "none", "imageSize": [args.size] * 2},
            "head": {"pooling": "avg"},
            "dataset": {"imageFolder": {"uri": str(folder)}, "splits": {"validation": args.validation},
                        "batchSize": args.batch, "shuffleBuffer": 1000},
            "seed": args.seed,
            "stages": [
                {"name": "frozen", "trainBase": "none", "epochs": args.frozen_epochs,
                 "optimizer": {"type": "SGD", "learningRate": 0.2, "momentum": 0.9}},
                {"name": "finetune", "trainBase": "all", "epochs": args.finetune_epochs,
                 "optimizer": {"type": "SGD", "learningRate": 0.01, "momentum": 0.9}},
            ],
            "output": {"uri": str(output), "formats": ["keras"], "overwrite": True},
        }})
    times: dict[str, float] = {}

    class Clock(Reporter):
        def stage_started(self, stage: Any, initial_epoch: int, steps: int | None) -> None:
            times[stage.name] = time.perf_counter()

        def stage_ended(self, result: Any) -> None:
            times[result.name] = time.perf_counter() - times[result.name]

    t = time.perf_counter()
    result = run_job(job, str(output), Clock())
    total = time.perf_counter() - t
    by_name = {s.name: s for s in result.stages}
    return {"frozen_s": times["frozen"], "finetune_s": times["finetune"], "total_s": total,
            "feature_cache": by_name["frozen"].feature_cache,
            "val_acc_frozen": by_name["frozen"].history["val_accuracy"][-1],
            "val_acc": by_name["finetune"].history["val_accuracy"][-1]}


def floor(args: argparse.Namespace, parts: dict) -> float:
    """Seconds for one forward pass of the base over train + validation, images already in memory."""
    import numpy as np
    import tensorflow as tf

    ctor, preprocess_input = _app(args.application)
    pairs = parts["train"] + parts["validation"]
    images = np.stack([tf.image.resize(tf.io.decode_jpeg(tf.io.read_file(p), channels=3), [args.size] * 2)
                       .numpy() for p, _ in pairs])
    base = ctor(weights=None, include_top=False, input_shape=(args.size, args.size, 3))
    forward = tf.function(lambda x: base(preprocess_input(x), training=False))
    batches = [tf.constant(images[i:i + args.batch]) for i in range(0, len(images), args.batch)]
    forward(batches[0])  # tracing is not part of the floor
    if len(batches[-1]) != args.batch:
        forward(batches[-1])
    best = float("inf")
    for _ in range(2):  # a lower bound: the better of two passes
        t = time.perf_counter()
        for b in batches:
            forward(b).numpy()
        best = min(best, time.perf_counter() - t)
    return best


def _fresh() -> None:
    """Drop the previous side's models and graphs so that neither side runs in the other's leftovers."""
    import gc

    import keras

    keras.backend.clear_session()
    gc.collect()


def report(args: argparse.Namespace, n_train: int, n_val: int, base: dict, hs: dict, fl: float) -> dict:
    from rich.console import Console
    from rich.table import Table

    rows = []
    for stage, epochs in (("frozen", args.frozen_epochs), ("finetune", args.finetune_epochs)):
        b, h = base[f"{stage}_s"], hs[f"{stage}_s"]
        rows.append((stage, epochs, b, h, b / h, n_train * epochs / b, n_train * epochs / h))
    table = Table(title=f"{args.application} {args.size}px, {n_train} train + {n_val} validation images, "
                        f"batch {args.batch}, {os.cpu_count()} CPUs")
    for c in ("stage", "epochs", "tutorial", "headstart", "speedup", "tutorial img/s", "headstart img/s"):
        table.add_column(c, justify="left" if c == "stage" else "right")
    for stage, epochs, b, h, ratio, bi, hi in rows:
        table.add_row(stage, str(epochs), f"{b:.1f}s", f"{h:.1f}s", f"{ratio:.2f}x", f"{bi:.0f}", f"{hi:.0f}")
    console = Console()
    console.print(table)
    console.print(f"floor (one forward pass of the base over train+validation): {fl:.1f}s; headstart's "
                  f"frozen stage is {hs['frozen_s'] / fl:.2f}x the floor (feature cache: {hs['feature_cache']})")
    console.print(f"validation accuracy after the frozen stage: tutorial {base['val_acc_frozen']:.3f}, "
                  f"headstart {hs['val_acc_frozen']:.3f}; after fine-tuning: tutorial {base['val_acc']:.3f}, "
                  f"headstart {hs['val_acc']:.3f}")
    return {
        "application": args.application, "size": args.size, "train_images": n_train, "val_images": n_val,
        "batch": args.batch, "frozen_epochs": args.frozen_epochs, "finetune_epochs": args.finetune_epochs,
        "baseline_frozen_s": round(base["frozen_s"], 2), "headstart_frozen_s": round(hs["frozen_s"], 2),
        "baseline_finetune_s": round(base["finetune_s"], 2), "headstart_finetune_s": round(hs["finetune_s"], 2),
        "floor_s": round(fl, 2), "frozen_speedup": round(rows[0][4], 2), "finetune_speedup": round(rows[1][4], 2),
        "frozen_floor_ratio": round(hs["frozen_s"] / fl, 2),
        "val_acc_baseline_frozen": round(base["val_acc_frozen"], 4),
        "val_acc_headstart_frozen": round(hs["val_acc_frozen"], 4),
        "val_acc_baseline": round(base["val_acc"], 4), "val_acc_headstart": round(hs["val_acc"], 4),
        "headstart_job_s": round(hs["total_s"], 2), "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    _app(args.application)  # an unknown application fails before any work
    import warnings

    # the tutorial's plain fit passes shuffle=True with a dataset, as the tutorial does; keras warns
    warnings.filterwarnings("ignore", message=".*shuffle=True. was passed")
    from .images import split_like_trainer, write_folder

    scratch = None
    if args.workdir is None:
        scratch = tempfile.mkdtemp(prefix="headstart-bench-")
    work = Path(args.workdir or scratch)
    try:
        folder = work / "images"
        shutil.rmtree(folder, ignore_errors=True)
        w, h = args.photo_wh
        write_folder(folder, args.per_class, args.classes, h, w, seed=args.seed)
        parts = split_like_trainer(folder, args.validation, args.seed)
        n_train, n_val = len(parts["train"]), len(parts["validation"])
        print(f"{n_train} train + {n_val} validation JPEGs ({w}x{h}) in {folder}", flush=True)
        # The floor first, in TensorFlow's default state: run_job then configures the process its own way
        # (seed, op determinism on CPU), which its own stages pay for.
        fl = floor(args, parts)
        print(f"floor: {fl:.1f}s", flush=True)
        _fresh()
        base = baseline(args, parts, args.classes)
        print(f"tutorial: frozen {base['frozen_s']:.1f}s, fine-tune {base['finetune_s']:.1f}s", flush=True)
        _fresh()
        hs = headstart(args, folder, work / "output")
        print(f"headstart: frozen {hs['frozen_s']:.1f}s, fine-tune {hs['finetune_s']:.1f}s", flush=True)
        summary = report(args, n_train, n_val, base, hs, fl)
    finally:
        if scratch is not None:
            shutil.rmtree(scratch, ignore_errors=True)
    print(json.dumps(summary), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
