"""``headstart.sdk.Client``: one facade over two backends, the cluster and this machine.

    from headstart.sdk import Client

    client = Client(namespace="team-a")            # the cluster of the current kubeconfig context
    name = client.submit("job.yaml")
    job = client.wait(name, timeout=3600, callback=lambda j: print(j.status.phase.value))
    client.fetch(name, "models/flowers")

    local = Client(backend="local")                # the same calls, trained here (./headstart-runs)

Nothing is read at import or construction time except what the backend needs: the cluster backend loads
the kubeconfig when the Client is made (no network call until the first method).
"""

from __future__ import annotations

import inspect
import os
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from itertools import islice
from pathlib import Path
from typing import Any, Literal

from headstart.api import FineTuneJob

from .backend import Backend
from .errors import InvalidJob
from .results import JobEvent, StoredJob

DEFAULT_TIMEOUT = 24 * 3600.0


def load(job_or_path: FineTuneJob | str | os.PathLike | dict, target: str = "cluster") -> FineTuneJob:
    """A checked FineTuneJob, as `headstart validate` checks it.

    Args:
        job_or_path: A FineTuneJob model, a manifest's path (one document; ``-`` for standard input) or a
            parsed manifest (a dict, as from ``yaml.safe_load``).
        target: "cluster" (as the API server checks it) or "local" (a local output path is fine too).

    Returns:
        The job.

    Raises:
        InvalidJob: The manifest cannot be read or is not a valid FineTuneJob; ``lines`` holds one line per
            problem.
    """
    from headstart.api import check_document
    from headstart.api.manifests import ManifestError, parse_text, read_source

    if isinstance(job_or_path, FineTuneJob):
        if target == "local":
            return job_or_path
        job_or_path = job_or_path.to_manifest()
    if isinstance(job_or_path, dict):
        job, problems = check_document(job_or_path, target)
        errors = [p.render() for p in problems if p.severity == "error"]
        if job is None or errors:
            raise InvalidJob(f"not a valid FineTuneJob: {errors[0] if errors else 'unreadable'}", errors)
        return job
    source = str(job_or_path)
    try:
        documents = parse_text(read_source(source), "<stdin>" if source == "-" else source, target=target)
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
    """Submit, follow and fetch FineTuneJobs, in a cluster or on this machine.

    Args:
        namespace: The namespace of the jobs (default: the kubeconfig context's, else ``default``).
        context: The kubeconfig context (default: the current one).
        kubeconfig: The kubeconfig's path (default: ``$KUBECONFIG``, else ``~/.kube/config``; inside a pod,
            its service account).
        backend: ``"cluster"`` (the Kubernetes API; the operator trains) or ``"local"`` (the trainer in a
            background process here, as `headstart run` would).
        local_root: The local backend's folder (``./headstart-runs``: a job's model goes to
            ``local_root/NAME/``).

    Raises:
        ClusterUnreachable: No kubeconfig, a malformed one, or no such context (cluster backend).
        ValueError: An unknown ``backend``.

    Example:

        client = Client(namespace="team-a")
        name = client.submit("job.yaml")
        job = client.wait(name, timeout=3600)
    """

    backend: Backend

    def __init__(self, namespace: str | None = None, context: str | None = None,
                 kubeconfig: str | os.PathLike | None = None, *, backend: Literal["cluster", "local"] = "cluster",
                 local_root: str | os.PathLike = "headstart-runs"):
        if backend == "cluster":
            from .cluster import ClusterBackend

            self.backend = ClusterBackend(namespace, context, kubeconfig)
        elif backend == "local":
            from .local import LocalBackend

            self.backend = LocalBackend(local_root)
        else:
            raise ValueError(f"backend must be 'cluster' or 'local' (got {backend!r})")

    def __repr__(self) -> str:
        connection = getattr(self.backend, "connection", None)
        if connection is None:
            return f"Client(backend='local', local_root={str(getattr(self.backend, 'root', '')).__repr__()})"
        from .kube import server_address

        return (f"Client(backend='cluster', context={connection.context!r}, namespace={connection.namespace!r}, "
                f"server={server_address(connection.server)!r})")

    @property
    def namespace(self) -> str:
        """The namespace the client's jobs are in (``local`` for the local backend)."""
        return self.backend.namespace

    def submit(self, job_or_path: FineTuneJob | str | os.PathLike | dict) -> str:
        """Create a job, checked first as `headstart validate` checks it.

        Args:
            job_or_path: A FineTuneJob model, a manifest's path (one document) or a parsed manifest.

        Returns:
            The job's name.

        Raises:
            InvalidJob: The manifest is not valid (one line per problem in ``lines``), or the API server
                refused it.
            AlreadyExists: A job of that name exists in the namespace.
            ClusterUnreachable, Forbidden, CrdNotInstalled: The cluster cannot take it.
        """
        return self.backend.submit(load(job_or_path, self.backend.target))

    def get(self, name: str) -> StoredJob:
        """The job as it is now.

        Args:
            name: The job's name.

        Returns:
            The FineTuneJob (spec, status, metadata), or an InvalidStoredJob when the stored spec is one the
            models refuse (its ``problems`` say why).

        Raises:
            NotFound: There is no such job.
            ValueError: ``name`` is not a name.
        """
        return self.backend.get(_name(name))

    def list(self, selector: str | None = None, all_namespaces: bool = False) -> list[StoredJob]:
        """The jobs of the namespace.

        Args:
            selector: A label selector, e.g. ``team=vision``.
            all_namespaces: Every namespace's jobs (the user must be allowed to list them).

        Returns:
            The jobs (an InvalidStoredJob for each whose stored spec the models refuse).

        Raises:
            Forbidden, ClusterUnreachable, CrdNotInstalled: The cluster said no.
        """
        return self.backend.list(selector, all_namespaces)

    def wait(self, name: str, phases: Iterable[str] | str = ("Succeeded",), timeout: float = DEFAULT_TIMEOUT,
             callback: Callable[[StoredJob], None] | None = None) -> StoredJob:
        """Block until the job's phase is one of ``phases``.

        Args:
            name: The job's name.
            phases: Phases to wait for: some of Pending, Running, Succeeded, Failed, Suspended.
            timeout: Seconds to wait at most.
            callback: Called with the job at every change (and once at the start).

        Returns:
            The job, in one of ``phases``.

        Raises:
            JobFailed: It failed (unless Failed is among ``phases``); ``reason`` and ``detail`` say why.
            Timeout: ``timeout`` seconds passed first.
            NotFound: There is no such job (or it was deleted while waiting).
            ValueError: A bad argument (unknown phase, timeout not > 0, callback not callable).
        """
        if not isinstance(timeout, (int, float)) or isinstance(timeout, bool) or timeout <= 0:
            raise ValueError(f"timeout must be a number of seconds > 0 (got {timeout!r})")
        if callback is not None and not callable(callback):
            raise ValueError("callback must be callable")
        return self.backend.wait(_name(name), check_phases(phases), float(timeout), callback)

    def logs(self, name: str, follow: bool = False, timeout: float | None = None,
             tail: int | None = None) -> Iterator[str]:
        """The training log's lines.

        Args:
            name: The job's name.
            follow: Go on as lines are written, across pod restarts, until the job ends.
            timeout: With ``follow``, seconds to wait at most for a pod to start.
            tail: Only the last ``tail`` lines written so far (then, with ``follow``, what comes next).

        Returns:
            An iterator of lines, without their newlines.

        Raises:
            NotFound: No such job, or (without ``follow``) no training pod yet.
            Timeout: With ``follow``, no pod started in ``timeout`` seconds.
            ValueError: ``tail`` is not a whole number >= 0.
        """
        if tail is None:
            return self.backend.logs(_name(name), follow, timeout)
        if not isinstance(tail, int) or isinstance(tail, bool) or tail < 0:
            raise ValueError(f"tail must be a whole number of lines >= 0 (got {tail!r})")
        if "tail" in inspect.signature(self.backend.logs).parameters:  # the backend tails itself
            return self.backend.logs(_name(name), follow, timeout, tail=tail)  # type: ignore[call-arg]
        return _tail(self.backend, _name(name), follow, timeout, tail)

    def events(self, name: str) -> list[JobEvent]:
        """Events about the job, its training Job and pods, oldest first.

        Args:
            name: The job's name.

        Returns:
            The events.

        Raises:
            NotFound: There is no such job.
        """
        return self.backend.events(_name(name))

    def fetch(self, name: str, dest: str | os.PathLike, overwrite: bool = False) -> Path:
        """Download the job's model, every file checked against its manifest's sha256.

        Args:
            name: The job's name.
            dest: The folder to put it in (created; must be empty unless ``overwrite``).
            overwrite: Replace what ``dest`` holds, once the download is verified.

        Returns:
            ``dest``.

        Raises:
            NotFound: No such job, or it has no model yet.
            ArtifactError: The model is incomplete or does not match its manifest (nothing is left in
                ``dest``).
        """
        return Path(self.backend.fetch(_name(name), dest, overwrite))

    def delete(self, name: str, wait: float = 60) -> None:
        """Delete the job, its training Job and pods; its model stays in storage.

        Args:
            name: The job's name.
            wait: Seconds to wait, as kubectl does, until the job is gone (the operator lets it go: its name
                may then be used again); 0 returns at once.

        Raises:
            NotFound: There is no such job.
            Timeout: It was still there after ``wait`` seconds.
        """
        self.backend.delete(_name(name), wait)

    def suspend(self, name: str) -> None:
        """Stop the job's pod; `resume` continues from its last checkpoint.

        Args:
            name: The job's name.

        Raises:
            NotFound: There is no such job.
        """
        self.backend.set_suspend(_name(name), True)

    def resume(self, name: str) -> None:
        """Resume a suspended job from its last checkpoint.

        Args:
            name: The job's name.

        Raises:
            NotFound: There is no such job.
        """
        self.backend.set_suspend(_name(name), False)


def _tail(backend: Backend, name: str, follow: bool, timeout: float | None, tail: int) -> Iterator[str]:
    """The last ``tail`` lines of a backend that does not tail itself (its log one stream, read from the
    start each time: the local backend's)."""
    written = backend.logs(name, False, timeout)  # now: NotFound says so at the call, not at the first line
    if not follow:
        return iter(deque(written, maxlen=tail))
    return islice(backend.logs(name, True, timeout), max(sum(1 for _ in written) - tail, 0), None)


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
