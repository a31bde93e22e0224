"""The FineTuneJob's status (never written by users): what its one writer, the operator, observes.

The operator writes every field, by JSON merge patch on the status subresource: phase, reason, message,
conditions, observedGeneration, trainingJob, startTime and completionTime from the Job and its pods
(``headstart.api.verdict``), and the trainer's fields (stage, stageIndex, epoch, epochs, metrics, stages,
model) from the progress snapshots the training pod posts to it (``headstart.api.progress``), or, for the
model, from the container's termination message when the last snapshot was lost. The SDK's local backend
writes the same fields with the same functions.
"""

from __future__ import annotations

from datetime import datetime

from pydantic import Field

from ._base import ApiModel
from .reasons import Phase
from .stages import MAX_SWEEP_CANDIDATES

__all__ = ["Candidate", "Condition", "FineTuneJobStatus", "ModelStatus", "Phase", "StageResult"]


class Condition(ApiModel):
    """A metav1.Condition."""

    type: str = Field(max_length=316)
    status: str = Field(pattern=r"^(True|False|Unknown)$")
    reason: str | None = Field(default=None, max_length=1024)
    message: str | None = Field(default=None, max_length=32768)
    last_transition_time: datetime | None = None
    observed_generation: int | None = None


class Candidate(ApiModel):
    """One candidate of a stage's sweep and how it did."""

    learning_rate: float
    dropout: float
    monitor: str
    """The validation metric that picked the best (val_loss or val_accuracy)."""
    value: float | None = None
    """Its value for the weights the candidate would continue with; none when not finite."""
    epochs_completed: int = 0
    chosen: bool = False
    """The one that continued into the next stages."""


class StageResult(ApiModel):
    """Outcome of one stage."""

    name: str
    epochs_completed: int = 0
    best_val_accuracy: float | None = None
    duration_seconds: float | None = None
    stopped_early: bool = False
    candidates: list[Candidate] | None = Field(default=None, max_length=MAX_SWEEP_CANDIDATES)
    """A sweeping stage's candidates, in the order they trained; the chosen one's results are the stage's."""


class ModelStatus(ApiModel):
    """The model the job produced."""

    uri: str
    sha256: str | None = None
    """sha256 of the output's manifest.json (which holds the digest of every artifact)."""
    formats: list[str] = Field(default_factory=list)
    class_names: list[str] = Field(default_factory=list)
    pictures: list[str] = Field(default_factory=list, max_length=8)
    """The model card's pictures beside the model, relative to uri (curves.png, confusion.png), as the
    manifest lists them."""


class FineTuneJobStatus(ApiModel):
    """Observed state of a FineTuneJob."""

    phase: Phase | None = None
    """Pending, Running, Succeeded, Failed or Suspended."""
    reason: str | None = Field(default=None, max_length=1024)
    """Why the job is in its phase, as one CamelCase word (e.g. InsufficientGPU, WaitingForUpstream,
    QueuedByKueue, OOMKilled, DeadlineExceeded)."""
    conditions: list[Condition] = Field(
        default_factory=list,
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]})
    stage: str | None = None
    """Name of the current (or last) stage."""
    stage_index: int | None = None
    epoch: int | None = None
    """Current epoch within the stage, from 1."""
    epochs: int | None = None
    """Epochs scheduled for the current stage."""
    stages: list[StageResult] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    """Latest metrics with Keras names: loss, accuracy, val_loss, val_accuracy, test_accuracy..."""
    model: ModelStatus | None = None
    message: str | None = None
    """Why the job waits or failed, in one line."""
    training_job: str | None = Field(default=None, max_length=63)
    """Name of the batch/v1 Job that trains (in the same namespace)."""
    start_time: datetime | None = None
    completion_time: datetime | None = None
    observed_generation: int | None = None
