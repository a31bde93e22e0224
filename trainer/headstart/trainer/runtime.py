"""Numerics of a run: seed, determinism, mixed precision, XLA (spec.runtime), the devices it trains on
(distribution) and the dtype of the frozen base's feature pass on a CPU."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

from headstart.api import RuntimeSpec

from . import distribution
from .errors import SpecError

CPU_BFLOAT16_ENV = "HEADSTART_CPU_BFLOAT16"
"""off (default): the feature pass in float32, as every other path computes; auto: in bfloat16 on a CPU with
AMX (amx_bf16); on: on any CPU. Opt-in: bfloat16 features are not the float32 model's, so the stage's
validation figures would differ from the final evaluation's."""
BFLOAT16_CPU_FLAGS = ("amx_bf16",)


@dataclass(frozen=True)
class Runtime:
    gpus: int
    mixed_precision: bool
    xla: bool
    deterministic: bool
    seed: int
    replicas: int = 1
    """Devices a step is split across (MirroredStrategy when more than one)."""
    feature_dtype: str = "float32"
    """The dtype of the frozen base's feature pass (bfloat16 where the CPU computes it faster)."""
    distribution: distribution.Distribution = field(default=distribution.SINGLE, compare=False, repr=False)


def configure(spec: RuntimeSpec, seed: int) -> Runtime:
    """Apply the runtime settings to this process; call before building any model.

    Mixed precision and XLA default to on when a GPU is present. Without a GPU a run is deterministic for
    its seed (TensorFlow's op determinism; otherwise multi-threaded CPU kernels differ in the last bits
    between runs) unless XLA is asked for; ``deterministic: true`` asks for determinism on a GPU too
    (slower). Keras turns XLA off under op determinism, so determinism wins over XLA. Several GPUs train
    under a MirroredStrategy (see distribution). The feature pass of a frozen stage runs in bfloat16 on a
    CPU only, without mixed precision, as HEADSTART_CPU_BFLOAT16 says (see cpu_bfloat16).
    """
    import keras
    import tensorflow as tf

    bfloat16_mode = _bfloat16_mode()
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
    dist = distribution.select()
    bf16 = gpus == 0 and not mixed and cpu_bfloat16(bfloat16_mode)
    return Runtime(gpus=gpus, mixed_precision=mixed, xla=xla, deterministic=deterministic, seed=seed,
                   replicas=dist.replicas, feature_dtype="bfloat16" if bf16 else "float32", distribution=dist)


def _bfloat16_mode() -> str:
    mode = os.environ.get(CPU_BFLOAT16_ENV, "off").strip().lower() or "off"
    if mode not in ("auto", "on", "off"):
        raise SpecError(f"{CPU_BFLOAT16_ENV}={os.environ[CPU_BFLOAT16_ENV]!r}: expected auto, on or off")
    return mode


def cpu_flags() -> set[str]:
    """The CPU's feature flags as lscpu shows them (/proc/cpuinfo; empty where there is none)."""
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


def cpu_bfloat16(mode: str = "auto", flags: set[str] | None = None) -> bool:
    """Whether the frozen base's feature pass runs in bfloat16 on this CPU.

    ``auto`` turns it on only with AMX (amx_bf16), where oneDNN runs bfloat16 convolutions in hardware: on a
    CPU without bfloat16 units (the 2-core AMD EPYC this project is measured on has AVX2 only) bfloat16 is
    emulated and slower than float32 (bench/README.md has the figures)."""
    if mode in ("on", "off"):
        return mode == "on"
    flags = cpu_flags() if flags is None else flags
    return any(f in flags for f in BFLOAT16_CPU_FLAGS)


def _disable_op_determinism() -> None:
    from tensorflow.python.framework import config

    disable = getattr(config, "disable_op_determinism", None)
    if disable is not None and config.is_op_determinism_enabled():
        disable()
