"""What a frozen stage cannot go below, and a base whose features are worth training on.

* ``Floor``: decode and resize every train and validation image once (the trainer's own operations, in a
  parallel tf.data map), then one forward pass of the base over them, batch by batch; the forward function
  is traced and called once before the clock starts (those two times are reported beside the floor, not in
  it). Wall and process CPU seconds of each part.
* ``calibrate``: a random-weight base whose BatchNormalization statistics are those of the bench's own
  training images (one forward pass in training mode, no labels, no gradient): every layer's output is
  normalized as in a pretrained network, so its features do not vanish (``--base calibrated``; its features
  are still weak, and fine-tuning it collapses to one class on both sides: bench/README.md). Written as a
  weights file that the tutorial loads with ``ctor(weights=path)`` and Headstart with
  ``baseModel.weights: path``, as is the pretrained base of bench.pretrain (the default).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any


@contextmanager
def clock(into: dict, name: str) -> Iterator[None]:
    """Adds ``<name>_s`` (wall) and ``<name>_cpu_s`` (this process's CPU, every thread) to ``into``."""
    t, c = time.perf_counter(), time.process_time()
    try:
        yield
    finally:
        into[f"{name}_s"] = into.get(f"{name}_s", 0.0) + time.perf_counter() - t
        into[f"{name}_cpu_s"] = into.get(f"{name}_cpu_s", 0.0) + time.process_time() - c


def decode(pairs: list[tuple[str, int]], size: int) -> Any:
    """The images of ``pairs`` decoded and resized as the trainer does it (uint8, size x size)."""
    import numpy as np
    import tensorflow as tf

    def one(path: Any) -> Any:
        image = tf.io.decode_image(tf.io.read_file(path), channels=3, expand_animations=False)
        image.set_shape([None, None, 3])
        image = tf.image.resize(image, [size, size], antialias=True)
        return tf.cast(tf.round(tf.clip_by_value(image, 0.0, 255.0)), tf.uint8)

    from headstart.trainer.data import untuned

    ds = untuned(tf.data.Dataset.from_tensor_slices([p for p, _ in pairs]))
    ds = ds.map(one, num_parallel_calls=tf.data.AUTOTUNE, deterministic=True).batch(64)
    return np.concatenate([b for b in ds.as_numpy_iterator()]) if pairs else np.zeros((0, size, size, 3), "uint8")


class Floor:
    """The decode-inclusive floor for one base (built and traced in __init__, outside the clock)."""

    def __init__(self, ctor: Any, preprocess_input: Any, size: int, batch: int, weights: str | None):
        import tensorflow as tf

        self.size, self.batch = size, batch
        base = ctor(weights=weights, include_top=False, input_shape=(size, size, 3))
        spec = tf.TensorSpec([None, size, size, 3], tf.float32)
        self.forward = tf.function(lambda x: base(preprocess_input(x), training=False), input_signature=[spec])
        self.warmup: dict[str, float] = {}  # not part of the floor; reported beside it
        with clock(self.warmup, "trace"):
            self.forward.get_concrete_function()
        with clock(self.warmup, "first_call"):
            self.forward(tf.zeros([1, size, size, 3])).numpy()  # the graph is optimized on the first call

    def measure(self, pairs: list[tuple[str, int]]) -> dict[str, float]:
        import tensorflow as tf

        out: dict[str, float] = {}
        with clock(out, "decode"):
            images = decode(pairs, self.size)
        with clock(out, "forward"):
            for i in range(0, len(images), self.batch):
                self.forward(tf.constant(images[i:i + self.batch], tf.float32)).numpy()
        out["floor_s"] = out["decode_s"] + out["forward_s"]
        out["floor_cpu_s"] = out["decode_cpu_s"] + out["forward_cpu_s"]
        out["trace_s"], out["first_call_s"] = self.warmup["trace_s"], self.warmup["first_call_s"]
        return out


def warm_floor(floors: list[dict[str, float]]) -> float:
    """The mean of ``Floor.measure`` results with their trace and first call added (what a program making one
    pass pays): reported beside the floor, never instead of it."""
    return sum(f["floor_s"] + f["trace_s"] + f["first_call_s"] for f in floors) / len(floors)


def set_batch_norm_statistics(base: Any, x: Any) -> None:
    """Set the moving statistics of every BatchNormalization layer of ``base`` to those of the batch ``x``
    (one forward pass in training mode with momentum 0; nothing else changes)."""
    import keras

    norms = [layer for layer in base.layers if isinstance(layer, keras.layers.BatchNormalization)]
    saved = [layer.momentum for layer in norms]
    for layer in norms:
        layer.momentum = 0.0  # the moving statistics become this batch's
    try:
        base(x, training=True)
    finally:
        for layer, momentum in zip(norms, saved):
            layer.momentum = momentum


def calibrate(ctor: Any, preprocess_input: Any, size: int, pairs: list[tuple[str, int]], path: Path,
              seed: int, images: int = 128) -> str:
    """Write a random-weight base with BatchNormalization statistics of (up to) ``images`` of ``pairs``."""
    import keras
    import tensorflow as tf

    keras.utils.set_random_seed(seed)
    base = ctor(weights=None, include_top=False, input_shape=(size, size, 3))
    set_batch_norm_statistics(base, preprocess_input(tf.constant(decode(pairs[:images], size), tf.float32)))
    path.parent.mkdir(parents=True, exist_ok=True)
    base.save_weights(str(path))
    return str(path)
