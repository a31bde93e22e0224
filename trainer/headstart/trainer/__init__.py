"""Headstart's trainer: fine-tunes a pretrained Keras model as a FineTuneJob spec says.

``run_job(job, output)`` is the whole of it. Importing this package does not import TensorFlow; the
modules that need it import it when called.

Modules: base (the pretrained base), head (the new top and the assembled model), data (tf.data input),
stages (what trains, optimizers, schedules), callbacks (Keras callbacks), features (the frozen-base
feature cache), checkpoints (resume), outputs (atomic artifacts and manifest), modelcard, runtime (seed,
mixed precision, XLA), reporting (progress interface), console (rich progress), runner (orchestration),
__main__ (``python -m headstart.trainer``). Storage (fsspec I/O) is headstart.api.storage, shared with the
SDK.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    BaseModelError,
    DatasetDownloadError,
    DatasetError,
    NetworkError,
    OutputConflictError,
    OutputError,
    SpecError,
    TrainerError,
    WeightsDownloadError,
)
from .reporting import LineReporter, ModelInfo, Progress, Reporter, RunPlan, StagePlan, StageResult, TrainResult

if TYPE_CHECKING:
    from .runner import run_job

__all__ = [
    "BaseModelError", "DatasetDownloadError", "DatasetError", "LineReporter", "ModelInfo", "NetworkError",
    "OutputConflictError", "OutputError", "Progress", "Reporter", "RunPlan", "SpecError", "StagePlan", "StageResult",
    "TrainResult", "TrainerError", "WeightsDownloadError", "run_job",
]


def __getattr__(name: str) -> Any:
    if name == "run_job":
        from .runner import run_job

        return run_job
    raise AttributeError(f"module 'headstart.trainer' has no attribute {name!r}")
