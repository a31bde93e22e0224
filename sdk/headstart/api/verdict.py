"""From what a backend concluded about a job (a :class:`Verdict`) to its status fields (pure).

Phase, reason, message, observedGeneration, trainingJob, startTime, completionTime and the metav1
conditions: Created, Running, Succeeded, Failed, Suspended, and the kstatus trio Ready, Reconciling and
Stalled that Argo CD, Flux and kstatus-based tools read. A condition keeps its lastTransitionTime while its
status does not change. The operator and the SDK's local backend both write status with
:func:`status_patch`, so the same event reads the same in the cluster and ``--local``.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

from pydantic import ValidationError

from .reasons import TERMINAL_PHASES, Phase, Reason
from .status import Condition, FineTuneJobStatus, ModelStatus, StageResult
from .uris import redact_text

CONDITION_TYPES = ("Created", "Running", "Succeeded", "Failed", "Suspended", "Ready", "Reconciling", "Stalled")
#: The status fields a verdict decides (wire names).
VERDICT_FIELDS = ("phase", "reason", "message", "conditions", "observedGeneration", "trainingJob", "startTime",
                  "completionTime")
MESSAGE_LIMIT = 32768


@dataclass(frozen=True)
class Verdict:
    """What a backend concluded about a FineTuneJob from what it observed."""

    phase: Phase
    reason: Reason
    message: str
    created: bool = False
    """Whether its training Job exists (or existed)."""
    training_job: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    model: dict[str, Any] | None = None
    """status.model from the container's termination message (when the last snapshot was lost)."""
    final: dict[str, Any] | None = None
    """The termination message's stages and metrics: status.stages and status.metrics when they say more than
    the last snapshot that arrived (it was lost)."""
    refused_change: str | None = None
    """Why a spec change was refused (the job goes on with the spec it started with)."""

    def __post_init__(self) -> None:
        # status, events and logs are for anyone who may read the job: no URI's credentials in them
        object.__setattr__(self, "message", redact_text(self.message))

    def with_refusal(self, text: str | None) -> Verdict:
        """A copy of the verdict with refused_change set to ``text``.

        Args:
            text: Why a spec change was refused (None: none was).

        Returns:
            The new verdict.
        """
        return replace(self, refused_change=text)


def now() -> str:
    """The current time as the API server writes it (RFC 3339, seconds, UTC)."""
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _wanted(v: Verdict) -> list[tuple[str, bool, str, str]]:
    """(type, status, reason, message) of every condition."""
    reason = v.reason.value
    running = v.phase == Phase.RUNNING
    queued = v.reason in (Reason.QUEUED_BY_KUEUE, Reason.MISSING_LOCAL_QUEUE)  # its Job is suspended
    stalled = v.phase == Phase.FAILED or v.refused_change is not None
    stall_reason = Reason.SPEC_CHANGE_REFUSED.value if v.refused_change else reason
    stall_message = v.refused_change or v.message
    return [
        ("Created", v.created, Reason.JOB_CREATED.value if v.created else reason,
         f"training Job {v.training_job}" if v.created else v.message),
        ("Running", running, reason, v.message),
        ("Succeeded", v.phase == Phase.SUCCEEDED, reason, v.message),
        ("Failed", v.phase == Phase.FAILED, reason, v.message),
        ("Suspended", v.phase == Phase.SUSPENDED or queued, reason, v.message),
        ("Ready", v.phase == Phase.SUCCEEDED, reason, v.message),
        ("Reconciling", v.phase in (Phase.PENDING, Phase.RUNNING) and not stalled, reason, v.message),
        ("Stalled", stalled, stall_reason if stalled else "NotStalled", stall_message if stalled else ""),
    ]


def build_conditions(old: list[dict[str, Any]] | None, verdict: Verdict, generation: int | None,
                     timestamp: str) -> list[Condition]:
    """Every condition type once, in a fixed order; an unchanged status keeps its transition time."""
    previous = {c.get("type"): c for c in old or []}
    out = []
    for kind, status, reason, message in _wanted(verdict):
        text = "True" if status else "False"
        before = previous.get(kind) or {}
        when = before.get("lastTransitionTime") if before.get("status") == text else None
        out.append(Condition(type=kind, status=text, reason=reason or kind, message=message[:MESSAGE_LIMIT],
                             last_transition_time=when or timestamp, observed_generation=generation))
    return out


def status_patch(old: dict[str, Any] | None, verdict: Verdict, generation: int | None,
                 timestamp: str | None = None) -> dict[str, Any]:
    """The verdict's status fields (a JSON merge patch of status, wire names), built from the status model.
    A field the verdict leaves empty is cleared only when ``old`` has it."""
    old = old or {}
    timestamp = timestamp or now()
    message = verdict.message
    if verdict.refused_change:
        message = f"{verdict.refused_change}; {message}"
    completion = verdict.completion_time if verdict.phase.value in TERMINAL_PHASES else None
    if verdict.phase.value in TERMINAL_PHASES and not completion:
        completion = old.get("completionTime") or timestamp
    fields: dict[str, Any] = {
        "phase": verdict.phase, "reason": verdict.reason.value, "message": message,
        "conditions": build_conditions(old.get("conditions"), verdict, generation, timestamp),
        "observed_generation": generation, "training_job": verdict.training_job or old.get("trainingJob"),
        "start_time": old.get("startTime") or verdict.start_time, "completion_time": completion,
    }
    if verdict.model and not old.get("model"):
        fields["model"] = ModelStatus.model_validate(verdict.model)
    fields.update(_final_word(old, verdict.final))
    wire = {name: FineTuneJobStatus.model_fields[name].alias for name in fields}
    kept = {name: value for name, value in fields.items() if value is not None or old.get(wire[name]) is not None}
    patch = FineTuneJobStatus(**kept).model_dump(by_alias=True, mode="json", exclude_unset=True)
    patch["conditions"] = [{k: v for k, v in c.items() if v is not None} for c in patch["conditions"]]
    return patch


def _final_word(old: dict[str, Any], final: dict[str, Any] | None) -> dict[str, Any]:
    """status.stages and status.metrics from the trainer's termination message when it lists more stages than
    the status (the snapshots of the last stages were lost); nothing when it says no more, or not validly."""
    stages = (final or {}).get("stages")
    if not isinstance(stages, list) or len(stages) <= len(old.get("stages") or []):
        return {}
    try:
        out: dict[str, Any] = {"stages": [StageResult.model_validate(s) for s in stages]}
        metrics = (final or {}).get("metrics")
        if isinstance(metrics, dict):
            out["metrics"] = FineTuneJobStatus(metrics=metrics).metrics
    except ValidationError:
        return {}
    return out


def needs_patch(old: dict[str, Any] | None, patch: dict[str, Any]) -> bool:
    """Whether writing ``patch`` would change ``old``."""
    old = old or {}
    return any(old.get(k) != v for k, v in patch.items())
