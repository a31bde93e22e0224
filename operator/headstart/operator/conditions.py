"""The operator's part of a FineTuneJob's status: phase, reason, message, conditions, times (pure).

Conditions are metav1.Conditions: Created, Running, Succeeded, Failed, Suspended, and the kstatus trio
Ready, Reconciling and Stalled that Argo CD, Flux and kstatus-based tools read. A condition keeps its
lastTransitionTime while its status does not change.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass, replace
from typing import Any

TYPES = ("Created", "Running", "Succeeded", "Failed", "Suspended", "Ready", "Reconciling", "Stalled")
TERMINAL = ("Succeeded", "Failed")
OWNED = ("phase", "reason", "message", "conditions", "observedGeneration", "trainingJob", "startTime",
         "completionTime")


@dataclass(frozen=True)
class Verdict:
    """What the operator concluded about a FineTuneJob."""

    phase: str
    reason: str
    message: str
    created: bool = False
    """Whether its training Job exists (or existed)."""
    training_job: str | None = None
    start_time: str | None = None
    completion_time: str | None = None
    model: dict[str, Any] | None = None
    refused_change: str | None = None
    """Why a spec change was refused (the job goes on with the spec it started with)."""

    def with_refusal(self, text: str | None) -> Verdict:
        return replace(self, refused_change=text)


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def _wanted(v: Verdict) -> list[tuple[str, bool, str, str]]:
    """(type, status, reason, message) of every condition."""
    running = v.phase == "Running"
    queued = v.reason == "QueuedByKueue"
    stalled = v.phase == "Failed" or v.refused_change is not None
    stall_reason = "SpecChangeRefused" if v.refused_change else v.reason
    stall_message = v.refused_change or v.message
    return [
        ("Created", v.created, "JobCreated" if v.created else v.reason,
         f"training Job {v.training_job}" if v.created else v.message),
        ("Running", running, v.reason, v.message),
        ("Succeeded", v.phase == "Succeeded", v.reason, v.message),
        ("Failed", v.phase == "Failed", v.reason, v.message),
        ("Suspended", v.phase == "Suspended" or queued, v.reason, v.message),
        ("Ready", v.phase == "Succeeded", v.reason, v.message),
        ("Reconciling", v.phase in ("Pending", "Running") and not stalled, v.reason, v.message),
        ("Stalled", stalled, stall_reason if stalled else "NotStalled", stall_message if stalled else ""),
    ]


def build_conditions(old: list[dict[str, Any]] | None, verdict: Verdict, generation: int | None,
                     timestamp: str) -> list[dict[str, Any]]:
    previous = {c.get("type"): c for c in old or []}
    out = []
    for kind, status, reason, message in _wanted(verdict):
        text = "True" if status else "False"
        before = previous.get(kind) or {}
        when = before.get("lastTransitionTime") if before.get("status") == text else None
        cond = {"type": kind, "status": text, "reason": reason or kind, "message": message[:32768],
                "lastTransitionTime": when or timestamp}
        if generation is not None:
            cond["observedGeneration"] = generation
        out.append(cond)
    return out


def status_patch(old: dict[str, Any] | None, verdict: Verdict, generation: int | None,
                 timestamp: str | None = None) -> dict[str, Any]:
    """The operator-owned fields of status for ``verdict`` (a JSON merge patch of status)."""
    old = old or {}
    timestamp = timestamp or now()
    message = verdict.message
    if verdict.refused_change:
        message = f"{verdict.refused_change}; {message}"
    patch: dict[str, Any] = {
        "phase": verdict.phase,
        "reason": verdict.reason,
        "message": message,
        "conditions": build_conditions(old.get("conditions"), verdict, generation, timestamp),
        "observedGeneration": generation,
        "trainingJob": verdict.training_job or old.get("trainingJob"),
        "startTime": old.get("startTime") or verdict.start_time,
        "completionTime": verdict.completion_time if verdict.phase in TERMINAL else None,
    }
    if verdict.phase in TERMINAL and not patch["completionTime"]:
        patch["completionTime"] = old.get("completionTime") or timestamp
    if verdict.model and not old.get("model"):
        patch["model"] = verdict.model
    return {k: v for k, v in patch.items() if v is not None or old.get(k) is not None}


def needs_patch(old: dict[str, Any] | None, patch: dict[str, Any]) -> bool:
    old = old or {}
    return any(old.get(k) != v for k, v in patch.items())
