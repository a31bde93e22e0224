"""``headstart.sdk.Client``: one facade over two backends, the cluster and this machine.

    from headstart.sdk import Client

    client = Client(namespace="team-a")            # the cluster of the current kubeconfig context
    name = client.submit("job.yaml")
    job = client.wait(name, timeout=3600, callback=lambda j: print(j.status.phase))
    client.fetch(name, "models/flowers")

    local = Client(backend="local")                # the same calls, trained here (./headstart-runs)

Nothing is read at import or construction time except what the backend needs: the cluster backend loads
the kubeconfig when the Client is made (no network call until the first method).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any, Literal

from headstart.api import FineTuneJob

from .errors import InvalidJob
from .results import JobEvent

DEFAULT_TIMEOUT = 24 * 3600.0


def load(job_or_path: FineTuneJob | str | os.PathLike | dict) -> FineTuneJob:
    """A FineTuneJob from a model, a manifest's path (one document) or a parsed manifest, checked with the
    API models; InvalidJob with one line per problem otherwise."""
    from headstart.api import check_document
    from headstart.api.manifests import ManifestError, parse_text, read_source

    if isinstance(job_or_path, FineTuneJob):
        return job_or_path
    if isinstance(job_or_path, dict):
        job, problems = check_document(job_or_path)
        errors = [p.render() for p in problems if p.severity == "error"]
        if job is None or errors:
            raise InvalidJob(f"not a valid FineTuneJob: {errors[0] if errors else 'unreadable'}", errors)
        return job
    source = str(job_or_path)
    try:
        documents = parse_text(read_source(source), "<stdin>" if source == "-" else source)
    except ManifestError as exc:
        raise InvalidJob(exc.lines[0], exc.lines) from exc
    lines = [line for doc in documents for line in doc.lines() if "warning:" not in line]
    if lines or not documents:
        raise InvalidJob(lines[0] if lines else f"{source}: no FineTuneJob in it", lines)
    if len(documents) != 1:
        raise InvalidJob(f"{source}: holds {len(documents)} FineTuneJobs; submit them one at a time")
    assert documents[0].job is not None
    return documents[0].job


class Client:
    """Submit, follow and fetch FineTuneJobs, in a cluster (``backend="cluster"``) or here (``"local"``)."""

    def __init__(self, namespace: str | None = None, context: str | None = None,
                 kubeconfig: str | os.PathLike | None = None, *, backend: Literal["cluster", "local"] = "cluster",
                 local_root: str | os.PathLike = "headstart-runs"):
        if backend == "cluster":
            from .cluster import ClusterBackend

            self.backend: Any = ClusterBackend(namespace, context, kubeconfig)
        elif backend == "local":
            from .local import LocalBackend

            self.backend = LocalBackend(local_root)
        else:
            raise ValueError(f"backend must be 'cluster' or 'local' (got {backend!r})")

    @property
    def namespace(self) -> str:
        return self.backend.namespace

    def submit(self, job_or_path: FineTuneJob | str | os.PathLike | dict) -> str:
        """Create the job; returns its name. The manifest is checked first (as `headstart validate` does)."""
        return self.backend.submit(load(job_or_path))

    def get(self, name: str) -> FineTuneJob:
        return self.backend.get(_name(name))

    def list(self, selector: str | None = None, all_namespaces: bool = False) -> list[FineTuneJob]:
        return self.backend.list(selector, all_namespaces)

    def wait(self, name: str, phases: Iterable[str] | str = ("Succeeded",), timeout: float = DEFAULT_TIMEOUT,
             callback: Callable[[FineTuneJob], None] | None = None) -> FineTuneJob:
        """Block until the job's phase is one of ``phases``; returns the job. Raises JobFailed when it fails
        (unless Failed is among ``phases``), Timeout after ``timeout`` seconds, ValueError for bad
        arguments. ``callback(job)`` sees every change."""
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ValueError(f"timeout must be a number of seconds > 0 (got {timeout!r})")
        if callback is not None and not callable(callback):
            raise ValueError("callback must be callable")
        return self.backend.wait(_name(name), check_phases(phases), float(timeout), callback)

    def logs(self, name: str, follow: bool = False, timeout: float | None = None) -> Iterator[str]:
        """The training log's lines; ``follow``: as they are written, across pod restarts, until the end."""
        return self.backend.logs(_name(name), follow, timeout)

    def events(self, name: str) -> list[JobEvent]:
        return self.backend.events(_name(name))

    def fetch(self, name: str, dest: str | os.PathLike, overwrite: bool = False) -> Path:
        """Download the job's model into ``dest`` (verified against its manifest's sha256s); returns it."""
        return Path(self.backend.fetch(_name(name), dest, overwrite))

    def delete(self, name: str) -> None:
        self.backend.delete(_name(name))

    def suspend(self, name: str) -> None:
        self.backend.set_suspend(_name(name), True)

    def resume(self, name: str) -> None:
        self.backend.set_suspend(_name(name), False)


def _name(name: Any) -> str:
    if not isinstance(name, str) or not name:
        raise ValueError(f"name must be a FineTuneJob's name (got {name!r})")
    return name


def check_phases(phases: Any) -> set[str]:
    """Validate a wait's phases argument: a non-empty set of FineTuneJob phases."""
    from headstart.api import Phase

    known = {p.value for p in Phase}
    chosen = {phases} if isinstance(phases, str) else {getattr(p, "value", p) for p in phases or ()}
    unknown = chosen - known
    if not chosen or unknown:
        raise ValueError(f"phases must be some of {', '.join(sorted(known))} (got {sorted(chosen) or 'none'})")
    return chosen
