"""What a Client's backend does: the protocol the cluster backend (``ClusterBackend``, the Kubernetes API)
and the local one (``LocalBackend``, this machine's trainer) both satisfy. The Client checks arguments and
manifests; a backend gets them checked."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Protocol, runtime_checkable

if TYPE_CHECKING:
    from headstart.api import FineTuneJob

    from .results import JobEvent, StoredJob


@runtime_checkable
class Backend(Protocol):
    """Where jobs run. Every method raises the SDK's errors (headstart.sdk.errors), never a client's."""

    @property
    def namespace(self) -> str:
        """The namespace a job without one goes to (``local`` for this machine)."""
        ...

    @property
    def target(self) -> str:
        """How a manifest is checked for it: "cluster" (as the API server does) or "local" (a local output
        path too)."""
        ...

    def submit(self, job: FineTuneJob) -> str:
        """Create the (checked) job; returns its name. AlreadyExists when the name is taken."""
        ...

    def get(self, name: str) -> StoredJob:
        """The job now. NotFound when there is none."""
        ...

    def list(self, selector: str | None = None, all_namespaces: bool = False) -> list[StoredJob]:
        """The jobs of the namespace (or all), matching a label selector if given."""
        ...

    def wait(self, name: str, phases: set[str], timeout: float,
             callback: Callable[[StoredJob], None] | None = None) -> StoredJob:
        """Block until the job's phase is one of ``phases``. JobFailed, Timeout."""
        ...

    def logs(self, name: str, follow: bool = False, timeout: float | None = None) -> Iterator[str]:
        """The training log's lines (``follow``: as they are written, until the job ends)."""
        ...

    def events(self, name: str) -> list[JobEvent]:
        """Events about the job and its children, oldest first."""
        ...

    def fetch(self, name: str, dest: str | os.PathLike, overwrite: bool = False) -> Path:
        """The job's model, verified, into ``dest``; returns it."""
        ...

    def delete(self, name: str, wait: float = 0) -> None:
        """Delete the job (its model stays); ``wait`` > 0: until it is gone, at most that many seconds."""
        ...

    def set_suspend(self, name: str, suspend: bool) -> None:
        """Suspend (True) or resume (False) the job."""
        ...
