"""Numerics of a run: seed, determinism, mixed precision and XLA (spec.runtime)."""

from __future__ import annotations

from dataclasses import dataclass

from headstart.api import RuntimeSpec


@dataclass(frozen=True)
class Runtime:
    gpus: int
    mixed_precision: bool
    xla: bool
    deterministic: bool
    seed: int


def configure(spec: RuntimeSpec, seed: int) -> Runtime:
    """Apply the runtime settings to this process; call before building any model.

    Mixed precision and XLA default to on when a GPU is present. Without a GPU a run is deterministic for
    its seed (TensorFlow's op determinism; otherwise multi-threaded CPU kernels differ in the last bits
    between runs) unless XLA is asked for; ``deterministic: true`` asks for determinism on a GPU too
    (slower). Keras turns XLA off under op determinism, so determinism wins over XLA.
    """
    import keras
    import tensorflow as tf

    gpus = len(tf.config.list_physical_devices("GPU"))
    mixed = spec.mixed_precision if spec.mixed_precision is not None else gpus > 0
    xla = spec.xla if spec.xla is not None else gpus > 0
    deterministic = spec.deterministic or (gpus == 0 and not xla)
    keras.mixed_precision.set_global_policy("mixed_float16" if mixed else "float32")
    keras.utils.set_random_seed(seed)
    if deterministic:
        tf.config.experimental.enable_op_determinism()
        xla = False
    else:
        _disable_op_determinism()  # an earlier job in this process may have turned it on
    return Runtime(gpus=gpus, mixed_precision=mixed, xla=xla, deterministic=deterministic, seed=seed)


def _disable_op_determinism() -> None:
    from tensorflow.python.framework import config

    disable = getattr(config, "disable_op_determinism", None)
    if disable is not None and config.is_op_determinism_enabled():
        disable()
