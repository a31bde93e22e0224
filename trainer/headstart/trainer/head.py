"""The head (pooling, hidden layers, output sized from the classes) and the assembled model.

The model is ``image (raw RGB 0-255) -> preprocessing -> base(training=False) -> pooling -> head``.
The head's layers are shared by three views: the full model, the feature extractor (up to pooling) and
the head model (pooled features in, class probabilities out), so training either trains the same
weights.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from headstart.api import HeadSpec

from .base import Base
from .errors import BaseModelError, SpecError


@dataclass
class Assembled:
    model: Any
    """Full model: raw pixels in, class probabilities out."""
    features: Any
    """Feature extractor: raw pixels in, pooled base features out."""
    head: Any
    """Head model: pooled features in, class probabilities out."""
    base: Any


def assemble(base: Base, head: HeadSpec, num_classes: int, name: str = "headstart",
             swept_dropouts: tuple[float, ...] = ()) -> Assembled:
    """The model of ``base`` and ``head`` for ``num_classes`` classes. ``swept_dropouts``: the dropout rates a
    stage's sweep tries; the dropout layer before the output then exists whatever head.dropout is (at
    head.dropout; the sweep sets its rate per candidate)."""
    import keras

    if num_classes < 2:
        raise SpecError(f"a classifier needs at least two classes (got {num_classes})")
    h, w = base.image_size
    inputs = keras.Input(shape=(h, w, 3), name="image", dtype="float32")
    x = base.preprocessing(inputs) if base.preprocessing is not None else inputs
    fmap = base.model(x, training=False)
    rank = len(fmap.shape)
    if rank == 4:
        pooling_cls = keras.layers.GlobalAveragePooling2D if head.pooling == "avg" else \
            keras.layers.GlobalMaxPooling2D
        pooled = pooling_cls(name="pooling")(fmap)
    elif rank == 2:
        pooled = fmap
    else:
        raise BaseModelError(f"the base's output has shape {tuple(fmap.shape)}; the head needs a feature map "
                             "(batch, height, width, channels) or a vector (batch, features)")
    layers = []
    for i, spec in enumerate(head.layers, start=1):
        layers.append(keras.layers.Dense(spec.units, activation=spec.activation, name=f"head_dense_{i}"))
        if spec.dropout > 0:
            layers.append(keras.layers.Dropout(spec.dropout, name=f"head_dropout_{i}"))
    if head.dropout > 0 or any(swept_dropouts):
        # created at a rate above 0 (Keras gives a Dropout of rate 0 no seed generator), then set
        dropout = keras.layers.Dropout(max((head.dropout, *swept_dropouts)), name="dropout")
        dropout.rate = head.dropout
        layers.append(dropout)
    # float32 output keeps softmax and the loss stable under mixed precision.
    layers.append(keras.layers.Dense(num_classes, activation="softmax", name="predictions", dtype="float32"))

    def top(t: Any) -> Any:
        for layer in layers:
            t = layer(t)
        return t

    model = keras.Model(inputs, top(pooled), name=name)
    features = keras.Model(inputs, pooled, name="features")
    head_in = keras.Input(shape=tuple(pooled.shape[1:]), name="features", dtype=pooled.dtype)
    head_model = keras.Model(head_in, top(head_in), name="head")
    return Assembled(model=model, features=features, head=head_model, base=base.model)
