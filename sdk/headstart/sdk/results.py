"""Typed results of the SDK: FineTuneJobs (the headstart.api models), stored jobs whose spec the models
refuse (:class:`InvalidStoredJob`, with the problems), and events."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

from pydantic import ValidationError

from headstart.api import FineTuneJob, FineTuneJobStatus, ObjectMeta


@dataclass(frozen=True)
class JobEvent:
    """A Kubernetes event about a job or one of its children.

    Attributes:
        time: When it last happened (ISO 8601), or None.
        type: ``Normal`` or ``Warning``.
        reason: The event's reason, e.g. ``FailedScheduling``.
        message: What happened, in one line.
        object: What it is about, e.g. ``Pod/flowers-x7k2p``.
        count: How many times it happened.
    """

    time: str | None
    type: str
    reason: str
    message: str
    object: str
    count: int = 1


@dataclass(frozen=True, repr=False)
class InvalidStoredJob:
    """A FineTuneJob the cluster holds but whose spec the API models refuse (the API server cannot check
    every rule the models do; the operator marks such a job Failed, reason InvalidSpec).

    Its metadata and status are typed as a valid job's are; its spec is kept as stored (a plain dict), and
    ``problems`` says, one line each, what is wrong with it. Listing, watching and deleting it work as for any
    job; what needs the spec (its stages) does not.

    Attributes:
        api_version: ``headstart.dev/v1alpha1``.
        kind: ``FineTuneJob``.
        metadata: The object's metadata.
        spec: The spec as stored, untyped.
        status: Its status (None when it has none, or the stored status is itself unreadable).
        problems: One line per problem, e.g. ``spec.stages[0].epochs: must be greater than 0``.
    """

    api_version: str
    kind: str
    metadata: ObjectMeta
    spec: dict[str, Any]
    status: FineTuneJobStatus | None
    problems: tuple[str, ...] = field(default=())
    valid: ClassVar[bool] = False

    @property
    def name(self) -> str:
        """The job's name."""
        return self.metadata.name

    def __repr__(self) -> str:
        phase = self.status.phase.value if self.status and self.status.phase else None
        return (f"InvalidStoredJob(name={self.name!r}, namespace={self.metadata.namespace!r}, phase={phase!r}, "
                f"problems={list(self.problems)!r})")


#: What the SDK returns for a stored job.
StoredJob = FineTuneJob | InvalidStoredJob


def job_from(raw: dict) -> StoredJob:
    """A FineTuneJob object from the API server, typed; an :class:`InvalidStoredJob` when the models refuse
    its spec (never a half-typed model)."""
    from headstart.api.checks import fields_at
    from headstart.api.errors import problems_from

    try:
        return FineTuneJob.model_validate(raw)
    except ValidationError as exc:
        problems = [p.render() for p in problems_from(exc, fields_at) if p.severity == "error"]
    metadata_raw = raw.get("metadata") or {}
    try:
        metadata = ObjectMeta.model_validate(metadata_raw)
    except ValidationError:  # a name the server allows (a DNS subdomain) but the models do not
        metadata = ObjectMeta.model_construct(name=str(metadata_raw.get("name", "")),
                                              namespace=metadata_raw.get("namespace"))
    status = None
    if raw.get("status"):
        try:
            status = FineTuneJobStatus.model_validate(raw["status"])
        except ValidationError:
            problems.append("status: unreadable (not a FineTuneJob status)")
    return InvalidStoredJob(api_version=str(raw.get("apiVersion")), kind=str(raw.get("kind")), metadata=metadata,
                            spec=dict(raw.get("spec") or {}), status=status, problems=tuple(problems))


def event_from(event: Any) -> JobEvent:
    """A JobEvent from a kubernetes client CoreV1Event."""
    when = event.last_timestamp or event.event_time or event.first_timestamp or \
        (event.metadata.creation_timestamp if event.metadata else None)
    involved = event.involved_object
    return JobEvent(
        time=when.isoformat() if hasattr(when, "isoformat") else when,
        type=event.type or "Normal", reason=event.reason or "", message=" ".join((event.message or "").split()),
        object=f"{involved.kind}/{involved.name}" if involved else "", count=event.count or 1)
