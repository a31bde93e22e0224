"""A base with useful features for the trainer benchmark, made here since no weights can be downloaded.

The base is pretrained on a *source* task, the bench's other synthetic classes (``rose``, ``slate`` and
``violet``: darker hues, other shapes), never on the images the bench then trains and validates on
(``amber``, ``cobalt``, ``jade``): a transfer, as from ImageNet to flowers. Plain Keras, from random weights,
BatchNormalization in training mode (a FineTuneJob keeps it frozen, which is right for a pretrained base and
wrong for one trained from scratch); then the BatchNormalization statistics are set from the source's training
images (bench.floor.set_batch_norm_statistics), since after a few steps its moving averages still hold mostly
their initial values.

Pretraining ResNet50 at 128 px took 212-219 s on this project's 2 cores, so the weights are kept in a cache
(``$HEADSTART_CACHE/bench``, default ``~/.cache/headstart/bench``) under a key of everything that makes them.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

from .floor import decode, set_batch_norm_statistics
from .images import CLASS_NAMES, split_like_trainer, write_folder

#: The source task: the last three classes of bench.images (the bench itself trains on the first ones).
SOURCE_FIRST = 3
SOURCE_CLASSES = len(CLASS_NAMES) - SOURCE_FIRST
VERSION = 1  # bump when what this module computes changes


def cache_dir() -> Path:
    root = os.environ.get("HEADSTART_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "headstart")
    return Path(root) / "bench"


def pretrained(application: str, ctor: Any, preprocess_input: Any, size: int, photo_wh: tuple[int, int],
               *, per_class: int, epochs: int, learning_rate: float, seed: int) -> tuple[str, dict]:
    """The path of the pretrained base's weights file (made now, or found in the cache) and what the
    pretraining measured (``cached`` says which)."""
    recipe = {"version": VERSION, "application": application, "size": size, "photo": list(photo_wh),
              "source_classes": list(CLASS_NAMES[SOURCE_FIRST:]), "per_class": per_class, "epochs": epochs,
              "learning_rate": learning_rate, "seed": seed}
    key = hashlib.sha256(json.dumps(recipe, sort_keys=True).encode()).hexdigest()[:16]
    folder = cache_dir()
    weights, info_file = folder / f"{application}-{size}-{key}.weights.h5", folder / f"{application}-{size}-{key}.json"
    if weights.exists() and info_file.exists():
        return str(weights), {**json.loads(info_file.read_text()), "cached": True}
    folder.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".pretrain-", dir=folder))
    try:
        base, info = _pretrain(ctor, preprocess_input, size, photo_wh, work, per_class, epochs, learning_rate, seed)
        info["recipe"] = recipe
        part = work / weights.name
        base.save_weights(str(part))
        (work / info_file.name).write_text(json.dumps(info))
        os.replace(part, weights)  # the weights first: without the info file they are not used
        os.replace(work / info_file.name, info_file)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return str(weights), {**info, "cached": False}


def _pretrain(ctor: Any, preprocess_input: Any, size: int, photo_wh: tuple[int, int], work: Path,
              per_class: int, epochs: int, learning_rate: float, seed: int) -> tuple[Any, dict]:
    import keras
    import numpy as np

    w, h = photo_wh
    write_folder(work / "images", per_class, SOURCE_CLASSES, h, w, seed=seed + 1, first=SOURCE_FIRST)
    parts = split_like_trainer(work / "images", 0.25, seed)

    def arrays(pairs: list[tuple[str, int]]) -> tuple[Any, Any]:
        return preprocess_input(decode(pairs, size).astype("float32")), np.array([y for _, y in pairs])

    x, y = arrays(parts["train"])
    vx, vy = arrays(parts["validation"])
    keras.utils.set_random_seed(seed)
    base = ctor(weights=None, include_top=False, input_shape=(size, size, 3))
    pooled = keras.layers.GlobalAveragePooling2D()(base.output)
    model = keras.Model(base.input, keras.layers.Dense(SOURCE_CLASSES, activation="softmax")(pooled))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"])
    print(f"pretraining the base on the source classes {', '.join(CLASS_NAMES[SOURCE_FIRST:])} ({len(x)} train + "
          f"{len(vx)} validation images, {epochs} epochs; cached afterwards)", flush=True)
    t = time.perf_counter()
    history = model.fit(x, y, batch_size=32, epochs=epochs, shuffle=True, verbose=0)
    seconds = time.perf_counter() - t
    set_batch_norm_statistics(base, x[:128])
    _, val_acc = model.evaluate(vx, vy, batch_size=32, verbose=0)
    print(f"pretrained in {seconds:.0f}s: source train accuracy {history.history['accuracy'][-1]:.3f}, "
          f"source validation accuracy {val_acc:.3f}", flush=True)
    return base, {"seconds": round(seconds, 1), "source_train_images": len(x),
            "source_val_images": len(vx), "source_train_acc": round(float(history.history["accuracy"][-1]), 4),
            "source_val_acc": round(float(val_acc), 4)}
