"""`headstart why`: a job's state in plain words (pure: a job and its events in, lines out).

The operator sets ``status.reason`` to a :class:`headstart.api.reasons.Reason` (InsufficientGPU,
QueuedByKueue, OOMKilled...); this module turns it, the message, the conditions and recent Warning events
into what is happening, what went wrong and what to do next (each reason's own advice).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from headstart.api.reasons import Reason

from .results import JobEvent, StoredJob


@dataclass(frozen=True)
class Explanation:
    state: str
    """One line: the phase and what it means now."""
    details: list[str]
    """Progress, the model, the conditions that are not fine."""
    events: list[str]
    """Recent warnings (and the last few events)."""
    next_step: str | None


_COMMAND = re.compile(r"`(headstart (?!validate|init|run|crd)[^`]*)`")


def for_local(advice: str) -> str:
    """Advice for a job of this machine: every suggested `headstart ...` cluster command gets --local."""
    return _COMMAND.sub(lambda m: f"`{m.group(1)} --local`", advice)


def explain(job: StoredJob, events: list[JobEvent], recent: int = 5, local: bool = False) -> Explanation:
    """What ``job`` is doing, in words: its state, details, recent events and the next step (for a job of
    this machine, ``local``: its commands take --local)."""
    status = job.status
    phase = status.phase.value if status and status.phase else "Pending"
    reason = (status.reason if status else None) or ""
    message = (status.message if status else None) or ""
    words = {
        "Pending": "waiting to run",
        "Running": "training",
        "Succeeded": "done: the model is written",
        "Failed": "failed",
        "Suspended": "suspended",
    }[phase]
    state = f"{job.name} is {phase} ({words})" + (f": {reason}" if reason else "") + \
        (f": {message}" if message else "")
    details = []
    if status and status.stage:
        epoch = f", epoch {status.epoch}/{status.epochs}" if status.epoch is not None else ""
        details.append(f"stage {status.stage}{epoch}")
    if status and status.metrics:
        details.append("metrics: " + " ".join(f"{k}={v:.4g}" for k, v in sorted(status.metrics.items())))
    if status and status.model:
        details.append(f"model: {status.model.uri} (manifest sha256 {(status.model.sha256 or '')[:16]})")
    for cond in status.conditions if status else []:
        if cond.type == "Stalled" and cond.status == "True":
            details.append(f"stalled: {cond.reason}: {cond.message}")
    if status and status.training_job:
        details.append(f"training Job: {status.training_job}")
    details += [f"invalid spec: {problem}" for problem in getattr(job, "problems", ())]
    warnings = [e for e in events if e.type == "Warning"]
    chosen = warnings[-recent:] if warnings else events[-recent:]
    lines = [f"{e.time or '-'} {e.type} {e.reason} {e.object}: {e.message}" +
             (f" (x{e.count})" if e.count > 1 else "") for e in chosen]
    known = Reason.lookup(reason)
    advice = known.advice if known is not None and known.advice else None
    if advice is None and phase == "Failed":
        advice = ("`headstart logs NAME` shows the trainer's last lines; fix the cause, delete the job and submit "
                  "it again")
    if advice is None and phase == "Pending" and not reason and not local:
        advice = "the operator has not picked it up yet: is it running? (kubectl get pods -n headstart-system)"
    if advice is not None:
        advice = advice.replace("NAME", job.name)
        advice = for_local(advice) if local else advice
    return Explanation(state, details, lines, advice)


def render(explanation: Explanation) -> list[str]:
    """The explanation as the lines `headstart why` prints."""
    out = [explanation.state]
    out += [f"  {line}" for line in explanation.details]
    if explanation.events:
        out.append("recent events:")
        out += [f"  {line}" for line in explanation.events]
    if explanation.next_step:
        out.append(f"next: {explanation.next_step}")
    return out
