"""The Headstart SDK: ``Client`` (cluster or local backend), its results and exceptions, and the `headstart`
command line (``headstart.sdk.cli``). Importing this package imports neither the kubernetes client nor
TensorFlow (``Client`` and the results load the API models on first use)."""

from __future__ import annotations

import typing as _typing

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

if _typing.TYPE_CHECKING:  # for type checkers and editors; at run time they load on first use
    from .backend import Backend
    from .client import Client
    from .results import InvalidStoredJob, JobEvent

__all__ = [
    "AlreadyExists", "ArtifactError", "Backend", "Client", "ClusterUnreachable", "CrdNotInstalled", "Forbidden",
    "HeadstartError", "InvalidJob", "InvalidStoredJob", "JobEvent", "JobFailed", "NotFound", "Timeout",
]
_LAZY = {"Client": ".client", "JobEvent": ".results", "InvalidStoredJob": ".results", "Backend": ".backend"}


def __getattr__(name: str) -> object:
    if name in _LAZY:
        from importlib import import_module

        return getattr(import_module(_LAZY[name], __name__), name)
    raise AttributeError(f"module 'headstart.sdk' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
