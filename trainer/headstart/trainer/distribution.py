"""Several devices in one process: tf.distribute.MirroredStrategy over the GPUs the trainer sees.

The operator gives the pod ``spec.resources.gpus`` GPUs (the nvidia.com/gpu limit); the trainer does not
read that field, it counts the GPUs TensorFlow sees. With more than one, every variable is mirrored on
each, each step splits its batch across them and sums the gradients: ``dataset.batchSize`` is the batch
of one replica, a step's global batch is ``batchSize x replicas``. With one GPU, or none, nothing changes
(no strategy, the same code path as before).

Several logical CPU devices count as replicas too (``tf.config.set_logical_device_configuration``: one
physical CPU shows as one device unless a program splits it), so the distributed path runs and is tested
on a machine without a GPU.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Distribution:
    strategy: Any | None
    """A MirroredStrategy, or None: a single device, no strategy."""
    devices: tuple[str, ...]
    """The replicas' devices (empty for a single device)."""

    @property
    def replicas(self) -> int:
        return max(1, len(self.devices))

    def scope(self) -> contextlib.AbstractContextManager:
        """The strategy's scope (variables built in it are mirrored), or a scope that does nothing."""
        return self.strategy.scope() if self.strategy is not None else contextlib.nullcontext()

    def global_batch(self, per_replica: int) -> int:
        return per_replica * self.replicas


SINGLE = Distribution(None, ())


def replica_devices() -> list[str]:
    """The devices to mirror over: every GPU when there are several, else every logical CPU device when a
    program split the CPU into several; empty when there is one device of the kind in use."""
    import tensorflow as tf

    gpus = [d.name for d in tf.config.list_logical_devices("GPU")]
    if gpus:
        return gpus if len(gpus) > 1 else []
    cpus = [d.name for d in tf.config.list_logical_devices("CPU")]
    return cpus if len(cpus) > 1 else []


def select(devices: list[str] | None = None) -> Distribution:
    """A MirroredStrategy over ``devices`` (default: replica_devices()) when there are several, else SINGLE."""
    import tensorflow as tf

    devices = replica_devices() if devices is None else list(devices)
    if len(devices) < 2:
        return SINGLE
    cross_device_ops = None
    if not any("GPU" in d.upper() for d in devices):
        cross_device_ops = tf.distribute.ReductionToOneDevice(reduce_to_device=devices[0])
    return Distribution(tf.distribute.MirroredStrategy(devices, cross_device_ops=cross_device_ops), tuple(devices))

