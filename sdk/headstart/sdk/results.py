"""Typed results of the SDK: FineTuneJobs (the headstart.api models) and events."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from headstart.api import FineTuneJob, FineTuneJobSpec, FineTuneJobStatus, ObjectMeta


@dataclass(frozen=True)
class JobEvent:
    """A Kubernetes event about a job or one of its children."""

    time: str | None
    """When it last happened (ISO 8601)."""
    type: str
    """Normal or Warning."""
    reason: str
    message: str
    object: str
    """What it is about, e.g. 'Pod/flowers-x7k2p'."""
    count: int = 1


def job_from(raw: dict) -> FineTuneJob:
    """A FineTuneJob object from the API server, typed. A stored spec the models refuse (the server cannot
    check everything the models do; the operator marks such a job Failed) keeps its raw fields, so listing
    and watching it still work; its status and metadata are typed either way."""
    try:
        return FineTuneJob.model_validate(raw)
    except ValidationError:
        status = raw.get("status")
        return FineTuneJob.model_construct(
            api_version=raw.get("apiVersion"), kind=raw.get("kind"),
            metadata=ObjectMeta.model_validate(raw.get("metadata") or {}),
            spec=FineTuneJobSpec.model_construct(**(raw.get("spec") or {})),
            status=FineTuneJobStatus.model_validate(status) if status else None)


def event_from(event: Any) -> JobEvent:
    """A JobEvent from a kubernetes client CoreV1Event."""
    when = event.last_timestamp or event.event_time or event.first_timestamp or \
        (event.metadata.creation_timestamp if event.metadata else None)
    involved = event.involved_object
    return JobEvent(
        time=when.isoformat() if hasattr(when, "isoformat") else when,
        type=event.type or "Normal", reason=event.reason or "", message=" ".join((event.message or "").split()),
        object=f"{involved.kind}/{involved.name}" if involved else "", count=event.count or 1)
