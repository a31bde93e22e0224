"""The feature cache: for a stage whose base is frozen and whose images are not augmented, the base's
(pooled) features are computed once and the head trains on them. The head's layers are the full model's
own, so the full model afterwards computes exactly what the end-to-end path would."""

from __future__ import annotations

from typing import Any

from headstart.api import StageSpec


def applies(stage: StageSpec, augment: Any | None) -> bool:
    return stage.trainable.frozen and augment is None


def extractor(feature_model: Any, xla: bool = False) -> Any:
    """The base's forward pass, traced once for every split and batch size (the batch dimension is open)."""
    import tensorflow as tf

    inp = feature_model.inputs[0]
    spec = tf.TensorSpec([None, *inp.shape[1:]], inp.dtype)
    return tf.function(lambda x: feature_model(x, training=False), input_signature=[spec], jit_compile=xla)


def extract(fn: Any, feature_model: Any, batched: Any) -> tuple[Any, Any]:
    """(features, labels) as numpy arrays for every example of a batched dataset, in order; ``fn`` comes from
    ``extractor(feature_model)``."""
    import numpy as np

    feats, labels = [], []
    for x, y in batched:
        feats.append(fn(x).numpy())
        labels.append(y.numpy())
    if not feats:
        shape = tuple(int(d) for d in feature_model.outputs[0].shape[1:])
        return np.zeros((0, *shape), feature_model.outputs[0].dtype), np.zeros((0,), "int32")
    return np.concatenate(feats), np.concatenate(labels)


def dataset(features: Any, labels: Any, batch_size: int, *, shuffle_buffer: int = 0, seed: int = 0) -> Any:
    """Batches of cached features, shuffled exactly as data.batches shuffles the images."""
    import tensorflow as tf

    ds = tf.data.Dataset.from_tensor_slices((features, labels))
    if shuffle_buffer > 0:
        ds = ds.shuffle(shuffle_buffer, seed=seed, reshuffle_each_iteration=True)
    return ds.batch(batch_size).prefetch(tf.data.AUTOTUNE)
