"""The cluster backend: FineTuneJobs through the Kubernetes API (the operator does the rest).

Every call names what it was about when it fails (a NotFound says which job in which namespace), and
every failure is one of the SDK's errors, chained from the kubernetes client's.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

from headstart.api import GROUP, PLURAL, VERSION, FineTuneJob, names

from .errors import HeadstartError, JobFailed, NotFound, Timeout
from .kube import REQUEST_TIMEOUT, Connection, connect, translate
from .results import JobEvent, StoredJob, event_from, job_from

#: The longest single watch request; a wait of any length is a chain of them, resumed where each ended.
WATCH_CHUNK_SECONDS = 60


class ClusterBackend:
    """FineTuneJobs of one kubeconfig context's cluster (see headstart.sdk.backend.Backend).

    Args:
        namespace: The namespace (default: the context's).
        context: The kubeconfig context (default: the current one).
        kubeconfig: The kubeconfig's path (default: $KUBECONFIG, ~/.kube/config, or in a pod its own).

    Raises:
        ClusterUnreachable: No kubeconfig, a malformed one, or no such context.
    """

    target = "cluster"  # manifests are checked as the API server checks them

    def __init__(self, namespace: str | None = None, context: str | None = None, kubeconfig: Any = None):
        self.connection: Connection = connect(kubeconfig, context, namespace)
        from kubernetes import client

        self.custom = client.CustomObjectsApi(self.connection.api)
        self.core = client.CoreV1Api(self.connection.api)
        self.batch = client.BatchV1Api(self.connection.api)

    @property
    def namespace(self) -> str:
        """The namespace of the connection: a job without one goes to it."""
        return self.connection.namespace

    def _what(self, name: str, namespace: str | None = None) -> str:
        return f"FineTuneJob {namespace or self.namespace}/{name}"

    def _call(self, what: str, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
        kwargs.setdefault("_request_timeout", REQUEST_TIMEOUT)
        try:
            return fn(*args, **kwargs)
        except HeadstartError:
            raise
        except Exception as exc:  # noqa: BLE001 - every client failure becomes an SDK error, chained
            raise translate(exc, what) from exc

    # -- jobs ------------------------------------------------------------------------------------------

    def submit(self, job: FineTuneJob) -> str:
        """Create the FineTuneJob in the cluster.

        Args:
            job: The (checked) job; it goes to its own namespace, else the backend's.

        Returns:
            The job's name.

        Raises:
            AlreadyExists: The name is taken in that namespace.
            HeadstartError: Any other failure of the API call, translated from the kubernetes client's.
        """
        namespace = job.metadata.namespace or self.namespace
        body = job.to_manifest()
        body["metadata"]["namespace"] = namespace
        self._call(self._what(job.name, namespace), self.custom.create_namespaced_custom_object,
                   GROUP, VERSION, namespace, PLURAL, body)
        return job.name

    def get_raw(self, name: str) -> dict:
        """The FineTuneJob as the API server returns it (a dict).

        Args:
            name: The job's name, in the backend's namespace.

        Returns:
            The custom object, status included.

        Raises:
            NotFound: There is no such job.
        """
        return self._call(self._what(name), self.custom.get_namespaced_custom_object,
                          GROUP, VERSION, self.namespace, PLURAL, name)

    def get(self, name: str) -> StoredJob:
        """The FineTuneJob now, read into a StoredJob.

        Args:
            name: The job's name, in the backend's namespace.

        Returns:
            The job (an InvalidStoredJob when its stored spec no longer reads).

        Raises:
            NotFound: There is no such job.
        """
        return job_from(self.get_raw(name))

    def list(self, selector: str | None = None, all_namespaces: bool = False) -> list[StoredJob]:
        """The FineTuneJobs of the namespace, or of every namespace.

        Args:
            selector: A label selector the jobs must match (None: all).
            all_namespaces: List the jobs of every namespace instead of the backend's.

        Returns:
            The jobs, as StoredJobs.
        """
        kwargs = {"label_selector": selector} if selector else {}
        if all_namespaces:
            found = self._call("FineTuneJobs", self.custom.list_cluster_custom_object, GROUP, VERSION, PLURAL,
                               **kwargs)
        else:
            found = self._call(f"FineTuneJobs in {self.namespace}", self.custom.list_namespaced_custom_object,
                               GROUP, VERSION, self.namespace, PLURAL, **kwargs)
        return [job_from(item) for item in found.get("items", [])]

    def delete(self, name: str, wait: float = 0) -> None:
        """Delete the job; with ``wait`` > 0, as kubectl does, until it is gone (the operator's finalizer
        removed), at most ``wait`` seconds (then Timeout)."""
        self._call(self._what(name), self.custom.delete_namespaced_custom_object, GROUP, VERSION,
                   self.namespace, PLURAL, name, propagation_policy="Background")
        deadline = time.monotonic() + wait
        while wait > 0:
            try:
                self.get_raw(name)
            except NotFound:
                return
            if time.monotonic() >= deadline:
                raise Timeout(f"{self._what(name)} is still being deleted after {wait:g}s: its finalizer is the "
                              "operator's to remove (is the operator running?)")
            time.sleep(0.2)

    def set_suspend(self, name: str, suspend: bool) -> None:
        """Suspend or resume the job by patching its spec.runPolicy.suspend.

        Args:
            name: The job's name, in the backend's namespace.
            suspend: True to suspend, False to resume.

        Raises:
            NotFound: There is no such job.
        """
        patch = {"spec": {"runPolicy": {"suspend": suspend}}}
        self._call(self._what(name), self.custom.patch_namespaced_custom_object, GROUP, VERSION,
                   self.namespace, PLURAL, name, patch)

    # -- waiting ---------------------------------------------------------------------------------------

    def wait(self, name: str, phases: set[str], timeout: float,
             callback: Callable[[StoredJob], None] | None = None) -> StoredJob:
        """Watch the job until its phase is one of ``phases``; JobFailed when it fails instead, Timeout when
        ``timeout`` seconds pass. The watch resumes from the last resourceVersion it saw and lists again
        when the server says that version is gone (410)."""
        from kubernetes import watch
        from kubernetes.client.exceptions import ApiException

        deadline = time.monotonic() + timeout
        raw = self.get_raw(name)
        while True:
            job = job_from(raw)
            if callback is not None:
                callback(job)
            done = _settled(job, phases)
            if done is not None:
                return done
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                phase = job.status.phase.value if job.status and job.status.phase else "no phase yet"
                raise Timeout(f"{self._what(name)} is still {phase} after {timeout:g}s")
            version = raw["metadata"]["resourceVersion"]
            try:
                raw = self._next_change(watch.Watch(), name, version, remaining) or raw
            except ApiException as exc:
                if exc.status != 410:
                    raise translate(exc, self._what(name)) from exc
                raw = self.get_raw(name)  # too old to resume from: start again from the present

    def _next_change(self, watcher: Any, name: str, version: str, remaining: float) -> dict | None:
        """The job as it is after its next change (None when the watch ended without one)."""
        seconds = max(1, int(min(remaining, WATCH_CHUNK_SECONDS)))
        try:
            stream = watcher.stream(self.custom.list_namespaced_custom_object, GROUP, VERSION, self.namespace,
                                    PLURAL, field_selector=f"metadata.name={name}", resource_version=version,
                                    timeout_seconds=seconds, allow_watch_bookmarks=True,
                                    _request_timeout=(5, seconds + 5))
            for event in stream:
                if event["type"] == "DELETED":
                    raise NotFound(f"{self._what(name)} was deleted while waiting for it")
                if event["type"] in ("ADDED", "MODIFIED"):
                    watcher.stop()
                    return event["object"]
        except HeadstartError:
            raise
        except Exception as exc:  # noqa: BLE001
            from kubernetes.client.exceptions import ApiException

            if isinstance(exc, ApiException) and exc.status == 410:
                raise
            raise translate(exc, self._what(name)) from exc
        return None

    # -- events, pods and logs -------------------------------------------------------------------------

    def events(self, name: str) -> list[JobEvent]:
        """Events of the job, its training Job and that Job's pods, oldest first."""
        raw = self.get_raw(name)
        objects = {name, (raw.get("status") or {}).get("trainingJob") or names.job_name_for(name)}
        objects |= {pod.metadata.name for pod in self.pods(name)}
        found = self._call(f"events of {self._what(name)}", self.core.list_namespaced_event, self.namespace)
        events = [event_from(e) for e in found.items if e.involved_object and e.involved_object.name in objects]
        return sorted(events, key=lambda e: e.time or "")

    def pods(self, name: str) -> list[Any]:
        """The job's training pods, oldest first."""
        found = self._call(f"pods of {self._what(name)}", self.core.list_namespaced_pod, self.namespace,
                           label_selector=names.selector_for(name))
        return sorted(found.items, key=lambda p: p.metadata.creation_timestamp)

    def logs(self, name: str, follow: bool = False, timeout: float | None = None,
             tail: int | None = None) -> Iterator[str]:
        """The newest training pod's log (``tail``: its last lines only); with ``follow`` every pod's in
        turn (``tail``: from the newest started one's last lines) until the job ends."""
        from .pod_logs import follow_logs, read_logs

        self.get_raw(name)  # NotFound early
        if follow:
            return follow_logs(self, name, timeout, tail)
        return read_logs(self, name, tail)

    def fetch(self, name: str, dest: Any, overwrite: bool = False) -> Any:
        """The job's model, verified, into ``dest``.

        A pvc:// model is copied through a helper pod (headstart.sdk.pvc_fetch); any other URI is downloaded from
        its storage (headstart.sdk.artifacts.fetch_uri).

        Args:
            name: The job's name, in the backend's namespace.
            dest: The folder to put the model in.
            overwrite: Whether a folder that is not empty may be replaced.

        Returns:
            The folder the model is in.

        Raises:
            NotFound: There is no such job, it has no model yet, or the model's manifest is missing.
            ArtifactError: The destination is refused, or the model cannot be read or does not match its manifest.
        """
        from pathlib import Path

        from headstart.api.uris import scheme_of

        from .artifacts import fetch_uri

        job = self.get(name)
        model = job.status.model if job.status else None
        if model is None:
            phase = job.status.phase.value if job.status and job.status.phase else "Pending"
            raise NotFound(f"{self._what(name)} has no model yet (phase {phase})")
        if scheme_of(model.uri) == "pvc":
            from .pvc_fetch import fetch_from_claim

            return fetch_from_claim(self, job, Path(dest), overwrite)
        return fetch_uri(model.uri, Path(dest), manifest_sha256=model.sha256, overwrite=overwrite)


def _settled(job: StoredJob, phases: set[str]) -> StoredJob | None:
    """The job when its phase is wanted; JobFailed when it failed and Failed is not wanted."""
    phase = job.status.phase.value if job.status and job.status.phase else None
    if phase in phases:
        return job
    if phase == "Failed":
        raise JobFailed(job.name, job.status.reason if job.status else None,
                        job.status.message if job.status else None)
    return None
