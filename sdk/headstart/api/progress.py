"""What a running trainer reports: a full progress snapshot, the latest of which wins.

In a cluster the training pod POSTs each snapshot to the operator's progress endpoint (authenticated by a
ServiceAccount token whose audience names the job, :func:`audience`), and the operator writes the trainer's
status fields from it; locally the SDK's backend writes the same fields from the same snapshot. A
snapshot is complete in itself (it repeats the stages finished before, even by an earlier pod), so a lost
or repeated request loses nothing, and ``seq`` orders the snapshots of one pod.
"""

from __future__ import annotations

from typing import Any

from pydantic import Field

from ._base import ApiModel
from .status import FineTuneJobStatus, ModelStatus, StageResult

#: The status fields a snapshot decides (wire names); the operator's own fields are the rest.
TRAINER_FIELDS = ("stage", "stageIndex", "epoch", "epochs", "metrics", "stages", "model")
#: Largest snapshot the endpoint accepts, in bytes.
MAX_SNAPSHOT_BYTES = 64 * 1024
AUDIENCE_PREFIX = "headstart.dev"


def audience(namespace: str, name: str) -> str:
    """The token audience that names one FineTuneJob: only its training pod holds a token for it, and the
    API server refuses such a token."""
    return f"{AUDIENCE_PREFIX}/{namespace}/{name}"


def endpoint_path(namespace: str, name: str) -> str:
    """Path of a job's progress resource on the operator's endpoint."""
    return f"/v1/namespaces/{namespace}/finetunejobs/{name}/progress"


class ProgressSnapshot(ApiModel):
    """The trainer's state at one moment, as it posts it."""

    seq: int = Field(ge=0)
    """Increases with every snapshot of one pod: a snapshot older than one already taken is ignored."""
    stage: str | None = None
    """Name of the current (or last) stage."""
    stage_index: int | None = Field(default=None, ge=0)
    epoch: int | None = Field(default=None, ge=0)
    """Epochs done in the current stage."""
    epochs: int | None = Field(default=None, ge=0)
    """Epochs scheduled for the current stage."""
    metrics: dict[str, float] = Field(default_factory=dict)
    """Latest metrics, Keras names."""
    stages: list[StageResult] = Field(default_factory=list)
    """Every stage finished so far, in order."""
    model: ModelStatus | None = None
    """The model written, once it is."""

    def status_fields(self) -> dict[str, Any]:
        """The trainer's part of the FineTuneJob's status (wire names), built from the status model: the
        fields this snapshot knows, nothing else."""
        known = {key: value for key, value in (
            ("stage", self.stage), ("stage_index", self.stage_index), ("epoch", self.epoch),
            ("epochs", self.epochs), ("model", self.model)) if value is not None}
        status = FineTuneJobStatus(metrics=self.metrics, stages=self.stages, **known)
        return status.model_dump(by_alias=True, mode="json", exclude_unset=True, exclude_none=True)

    def status_patch(self, old: dict[str, Any] | None) -> dict[str, Any]:
        """The JSON merge patch that makes the trainer's fields of status ``old`` this snapshot's: metrics
        it no longer reports are removed (a merge would keep them), fields it does not know are left as
        they are, and nothing that is already so is repeated (empty: no write needed)."""
        old = old or {}
        fields = self.status_fields()
        gone = {k: None for k in (old.get("metrics") or {}) if k not in fields.get("metrics", {})}
        if gone:
            fields["metrics"] = {**gone, **fields.get("metrics", {})}
        return {k: v for k, v in fields.items() if old.get(k) != v}
