"""The Headstart SDK: ``Client`` (cluster or local backend), its exceptions, and the `headstart` command line
(``headstart.sdk.cli``). Importing this package imports neither the kubernetes client nor TensorFlow."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .errors import (
    AlreadyExists,
    ArtifactError,
    ClusterUnreachable,
    CrdNotInstalled,
    Forbidden,
    HeadstartError,
    InvalidJob,
    JobFailed,
    NotFound,
    Timeout,
)

if TYPE_CHECKING:
    from .client import Client
    from .results import JobEvent

__all__ = [
    "AlreadyExists", "ArtifactError", "Client", "ClusterUnreachable", "CrdNotInstalled", "Forbidden",
    "HeadstartError", "InvalidJob", "JobEvent", "JobFailed", "NotFound", "Timeout",
]


def __getattr__(name: str) -> Any:
    if name == "Client":
        from .client import Client

        return Client
    if name == "JobEvent":
        from .results import JobEvent

        return JobEvent
    raise AttributeError(f"module 'headstart.sdk' has no attribute {name!r}")
