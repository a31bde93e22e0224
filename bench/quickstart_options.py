"""Re-measure the data options considered for the offline quickstart, in plain Keras (no Headstart).

``python -m bench.quickstart_options [--option NAME ...] [--seeds 1 2 3] [--labels 5 10]``

For each option and seed: render source and target images with the quickstart's own functions
(``headstart.quickstart.render``), train the quickstart's CNN on the source, transfer it to the
target (head on the frozen base with Adam 1e-2 for 30 epochs, then everything with Adam 1e-4 for 20)
and train the same architecture from scratch on the same few target labels (Adam 1e-3 and 3e-3, 60
epochs each; the better one counts). Prints one JSON line per (option, seed, labels per class) and a
summary of the gains. Takes about a minute per option and seed on 2 CPU cores.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any

from headstart.quickstart import Style

CLEAN = Style(shift=False)
OPTIONS: dict[str, dict[str, Any]] = {
    # classes 0-4 -> 5-9 (the target's classes are new to the base)
    "classes-clean": {"split": "classes", "source": CLEAN, "target": CLEAN},
    "classes-noise": {"split": "classes", "source": Style(noise=0.3, contrast=True),
                      "target": Style(noise=0.3, contrast=True)},
    "classes-clutter2": {"split": "classes", "source": Style(fragments=2, noise=0.1),
                         "target": Style(fragments=2, noise=0.1)},
    "classes-clutter4": {"split": "classes", "source": Style(fragments=4, noise=0.15),
                         "target": Style(fragments=4, noise=0.15)},
    # all ten classes, source and target from different halves of the samples (other writers)
    "writers-clutter-both": {"split": "writers", "source": Style(fragments=2, noise=0.1),
                             "target": Style(fragments=2, noise=0.1)},
    "writers-clean-to-clutter": {"split": "writers", "source": Style(noise=0.05),
                                 "target": Style(fragments=2, noise=0.1)},
    "writers-clean-to-heavy": {"split": "writers", "source": Style(noise=0.05),
                               "target": Style(fragments=3, noise=0.2, contrast=True)},
    "writers-light-to-clutter": {"split": "writers", "source": Style(fragments=1, noise=0.05),
                                 "target": Style(fragments=2, noise=0.1)},
}
QUICKSTART = "writers-clean-to-clutter"


def _cnn(classes: int, seed: int) -> Any:
    import keras
    from keras import layers

    keras.utils.set_random_seed(seed)
    inputs = keras.Input((32, 32, 1))
    x = layers.Rescaling(1 / 255)(inputs)
    for filters in (32, 64, 128):
        x = layers.Conv2D(filters, 3, padding="same", activation="relu")(x)
        x = layers.MaxPooling2D()(x)
    x = layers.Conv2D(128, 3, padding="same", activation="relu", name="features")(x)
    x = layers.GlobalAveragePooling2D()(x)
    return keras.Model(inputs, layers.Dense(classes, activation="softmax")(x))


def _fit(model: Any, lr: float, x: Any, y: Any, epochs: int, batch: int) -> None:
    import keras

    model.compile(optimizer=keras.optimizers.Adam(lr), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    model.fit(x, y, batch_size=batch, epochs=epochs, verbose=0)


def measure(name: str, seed: int, labels: list[int], source_epochs: int = 10, copies: int = 3) -> list[dict]:
    import keras
    import numpy as np

    from headstart.quickstart import digits, render

    opt = OPTIONS[name]
    images, y = digits()
    rng = np.random.default_rng(seed)
    if opt["split"] == "classes":
        src, tgt, offset, classes = np.flatnonzero(y < 5), np.flatnonzero(y >= 5), 5, 5
    else:
        order = np.random.default_rng(123).permutation(len(y))
        src, tgt, offset, classes = np.sort(order[: len(y) // 2]), np.sort(order[len(y) // 2:]), 0, 10
    xs = np.concatenate([render(images[src], images, rng, opt["source"]) for _ in range(copies)])[..., None]
    ys = np.tile(y[src], copies)
    xt = render(images[tgt], images, rng, opt["target"])[..., None]
    yt = y[tgt] - offset
    started = time.monotonic()
    source = _cnn(classes, seed)
    _fit(source, 1e-3, xs, ys, source_epochs, 64)
    source_seconds = time.monotonic() - started
    out = []
    for k in labels:
        pick = np.random.default_rng(seed + 7)
        train = np.concatenate([pick.permutation(np.flatnonzero(yt == c))[:k] for c in range(classes)])
        test = np.setdiff1d(np.arange(len(yt)), train)
        features = keras.Model(source.input, source.get_layer("features").output)
        base = keras.models.clone_model(features)
        base.set_weights(features.get_weights())
        base.trainable = False
        pooled = keras.layers.GlobalAveragePooling2D()(base.output)
        transfer = keras.Model(base.input, keras.layers.Dense(classes, activation="softmax")(pooled))
        _fit(transfer, 1e-2, xt[train], yt[train], 30, 32)
        frozen = transfer.evaluate(xt[test], yt[test], verbose=0)[1]
        base.trainable = True
        _fit(transfer, 1e-4, xt[train], yt[train], 20, 32)
        finetuned = transfer.evaluate(xt[test], yt[test], verbose=0)[1]
        scratch = {}
        for lr in (1e-3, 3e-3):
            model = _cnn(classes, seed + 1000)
            _fit(model, lr, xt[train], yt[train], 60, 32)
            scratch[str(lr)] = round(float(model.evaluate(xt[test], yt[test], verbose=0)[1]), 3)
        best = max(scratch.values())
        row = {"option": name, "seed": seed, "labels_per_class": k, "source_seconds": round(source_seconds, 1),
               "frozen": round(float(frozen), 3), "transfer": round(float(finetuned), 3),
               "scratch": scratch, "gain": round(float(finetuned) - best, 3)}
        print(json.dumps(row), flush=True)
        out.append(row)
    return out


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m bench.quickstart_options", description=__doc__.split("\n\n")[0])
    p.add_argument("--option", action="append", choices=sorted(OPTIONS),
                   help=f"an option to measure (repeatable; default: {QUICKSTART}, the quickstart's)")
    p.add_argument("--seeds", type=int, nargs="+", default=[1, 2, 3])
    p.add_argument("--labels", type=int, nargs="+", default=[5], help="labelled target images per class")
    args = p.parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    rows = [r for name in (args.option or [QUICKSTART]) for s in args.seeds for r in measure(name, s, args.labels)]
    for name in dict.fromkeys(r["option"] for r in rows):
        for k in args.labels:
            gains = [r["gain"] for r in rows if r["option"] == name and r["labels_per_class"] == k]
            if gains:
                print(f"{name} ({k} labels/class): gain min {min(gains):+.3f} mean {sum(gains) / len(gains):+.3f} "
                      f"over {len(gains)} seed(s)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
