"""One stage: what trains, its optimizer and learning rate, its callbacks.

Fields go straight to Keras: the optimizer's ``type`` is the keras.optimizers class, ``trainBase``
decides which of the base's layers are trainable. BatchNormalization stays in inference mode in every
stage (see set_trainable).
"""

from __future__ import annotations

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
    """The keras.optimizers instance a stage's optimizer spec names (the API checked its arguments)."""
    import keras

    kwargs: dict[str, Any] = {"learning_rate": learning_rate_at(spec, 0, 1)}
    if spec.momentum:
        kwargs["momentum"] = spec.momentum
    if spec.weight_decay is not None:
        kwargs["weight_decay"] = spec.weight_decay
    return getattr(keras.optimizers, spec.type)(**kwargs)


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


def compile_for_stage(model: Any, stage: StageSpec, xla: bool, steps_per_execution: int = 1) -> Any:
    """Compile ``model`` with the stage's optimizer, built here once for the stage; returns it."""
    optimizer = make_optimizer(stage.optimizer)
    compile_model(model, optimizer, xla, steps_per_execution)
    if not model.optimizer.built:  # model.optimizer: ``optimizer`` in a LossScaleOptimizer under mixed_float16
        model.optimizer.build(model.trainable_variables)  # see _build_metrics
    return optimizer


def compile_model(model: Any, optimizer: Any, xla: bool, steps_per_execution: int = 1) -> None:
    """Compile for training or evaluation: the loss and metric every stage uses. ``steps_per_execution``
    steps run in one call (the same steps, fewer round trips from Python; batch callbacks see every Nth)."""
    model.compile(optimizer=optimizer, loss="sparse_categorical_crossentropy", metrics=["accuracy"],
                  jit_compile=xla, steps_per_execution=steps_per_execution)
    _build_metrics(model)


def _build_metrics(model: Any) -> None:
    """Create the metrics' variables now, eagerly (their state is reset; fit and evaluate reset it again).

    Without a distribution strategy Keras creates the metrics' and the optimizer's variables while it
    traces the train (or test) step; a tf.function that created variables is traced a second time, so the
    whole step was traced and its graph optimized twice (a ResNet50 train step at 128 px: about 30 s more
    on 2 cores, bench/README.md). With them created before (the optimizer in compile_for_stage), the step
    is traced once. Under a strategy Keras creates them itself before tracing."""
    import tensorflow as tf

    if tf.distribute.has_strategy():
        return
    classes = int(model.outputs[0].shape[-1])
    model.compute_metrics(None, tf.zeros([1], tf.int32), tf.fill([1, classes], 1.0 / classes))
    model.reset_metrics()


def schedule_callback(stage: StageSpec) -> Any | None:
    """The stage's learning-rate schedule as a Keras callback, or None."""
    import keras

    if stage.optimizer.schedule is None:
        return None
    return keras.callbacks.LearningRateScheduler(
        lambda epoch, lr: learning_rate_at(stage.optimizer, epoch, stage.epochs))


def early_stopping_callback(stage: StageSpec, resume_state: dict | None = None,
                            best_weights: list | None = None) -> Any | None:
    """The stage's early stopping (resumable from a checkpoint's state and best weights), or None."""
    from .callbacks import ResumableEarlyStopping

    spec = stage.early_stopping
    if spec is None:
        return None
    return ResumableEarlyStopping(monitor=spec.monitor, patience=spec.patience, min_delta=spec.min_delta,
                                  restore_best_weights=spec.restore_best_weights, resume_state=resume_state,
                                  resume_weights=best_weights)


def history_best(history: dict[str, list[float]], key: str = "val_accuracy") -> float | None:
    values = history.get(key) or []
    return max(values) if values else None
