"""One stage: what trains, its optimizer and learning rate, its callbacks.

Fields go straight to Keras: the optimizer's ``type`` is the keras.optimizers class, ``trainBase``
decides which of the base's layers are trainable. BatchNormalization stays in inference mode in every
stage (see set_trainable).
"""

from __future__ import annotations

import inspect
import math
from typing import Any

from headstart.api import OptimizerSpec, StageSpec, TrainBase

from .errors import SpecError


def base_layers(base: Any) -> list[Any]:
    """The base's layers that trainBase counts (its input layers excluded), in order."""
    import keras

    return [layer for layer in base.layers if not isinstance(layer, keras.layers.InputLayer)]


def check_stage(stage: StageSpec, base: Any) -> None:
    """Raise before training when a stage names layers the base does not have."""
    import difflib

    tb = stage.trainable
    layers = base_layers(base)
    if tb.mode == "top" and tb.top is not None and tb.top > len(layers):
        raise SpecError(f"stage {stage.name!r}: trainBase top:{tb.top} but the base has {len(layers)} layers")
    if tb.mode == "from":
        names = [layer.name for layer in layers]
        if tb.from_layer not in names:
            close = difflib.get_close_matches(tb.from_layer or "", names, n=3)
            hint = f" (did you mean {', '.join(repr(c) for c in close)}?)" if close else ""
            raise SpecError(f"stage {stage.name!r}: trainBase from:{tb.from_layer}: the base has no such "
                            f"layer{hint}")
    if tb.mode != "none" and not any(layer.weights for layer in layers):
        raise SpecError(f"stage {stage.name!r}: trainBase {stage.train_base} but the base has no weights "
                        "that can train")
    make_optimizer(stage.optimizer)


def set_trainable(base: Any, tb: TrainBase) -> None:
    """Make the base's layers trainable as trainBase says (the head always trains).

    BatchNormalization layers stay frozen in every stage. The base is called with training=False, but in
    Keras 3 the outer model's training flag overrides that for a nested model during fit
    (keras-team/keras#20285); a frozen BatchNormalization layer always runs in inference mode, so its
    moving statistics (and its scale and offset) keep their pretrained values.
    """
    if tb.mode == "none":
        base.trainable = False
        return
    base.trainable = True
    for layer in _all_layers(base):  # undo what an earlier stage froze (a Functional does not recurse)
        layer.trainable = True
    layers = base_layers(base)
    if tb.mode == "top":
        first = len(layers) - (tb.top or 0)
    elif tb.mode == "from":
        first = [layer.name for layer in layers].index(tb.from_layer)
    else:
        first = 0
    for layer in layers[:first]:
        layer.trainable = False
    for layer in _all_layers(base):
        if isinstance(layer, _batch_norm_types()):
            layer.trainable = False


def _all_layers(model: Any) -> list[Any]:
    out = []
    for layer in getattr(model, "layers", []):
        out.append(layer)
        out.extend(_all_layers(layer))
    return out


def _batch_norm_types() -> tuple[type, ...]:
    import keras

    return (keras.layers.BatchNormalization,)


def make_optimizer(spec: OptimizerSpec) -> Any:
    import keras

    cls = getattr(keras.optimizers, spec.type)
    params = inspect.signature(cls).parameters
    kwargs: dict[str, Any] = {"learning_rate": learning_rate_at(spec, 0, 1)}
    if spec.momentum:
        if "momentum" not in params:
            raise SpecError(f"optimizer {spec.type} takes no momentum")
        kwargs["momentum"] = spec.momentum
    if spec.weight_decay is not None:
        kwargs["weight_decay"] = spec.weight_decay
    return cls(**kwargs)


def learning_rate_at(spec: OptimizerSpec, epoch: int, epochs: int) -> float:
    """The learning rate of an epoch (from 0) of a stage of ``epochs`` epochs."""
    lr = spec.learning_rate
    sched = spec.schedule
    if sched is None:
        return lr
    if epoch < sched.warmup_epochs:
        return lr * (epoch + 1) / (sched.warmup_epochs + 1)
    t = epoch - sched.warmup_epochs
    span = max(1, epochs - sched.warmup_epochs)
    if sched.type == "cosine":
        return lr * (sched.alpha + (1 - sched.alpha) * 0.5 * (1 + math.cos(math.pi * t / span)))
    return lr * sched.decay_rate ** t


def compile_for_stage(model: Any, stage: StageSpec, xla: bool) -> None:
    model.compile(optimizer=make_optimizer(stage.optimizer), loss="sparse_categorical_crossentropy",
                  metrics=["accuracy"], jit_compile=xla)


def callbacks(stage: StageSpec, resume_early_stopping: dict | None = None,
              best_weights: list | None = None) -> list[Any]:
    """The stage's own callbacks: learning-rate schedule and early stopping (resumable)."""
    import keras

    from .callbacks import ResumableEarlyStopping

    out: list[Any] = []
    if stage.optimizer.schedule is not None:
        out.append(keras.callbacks.LearningRateScheduler(
            lambda epoch, lr: learning_rate_at(stage.optimizer, epoch, stage.epochs)))
    if stage.early_stopping is not None:
        es = stage.early_stopping
        cb = ResumableEarlyStopping(monitor=es.monitor, patience=es.patience, min_delta=es.min_delta,
                                    restore_best_weights=es.restore_best_weights)
        cb.resume_from(resume_early_stopping, best_weights)
        out.append(cb)
    return out


def history_best(history: dict[str, list[float]], key: str = "val_accuracy") -> float | None:
    values = history.get(key) or []
    return max(values) if values else None
