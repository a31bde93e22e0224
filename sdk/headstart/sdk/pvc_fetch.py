"""Fetching a model from a PersistentVolumeClaim, as `kubectl cp` does: a short-lived helper pod mounts the
claim read-only, ``tar`` streams the model's folder through the API server (exec), and the stream is
unpacked here with every member checked (headstart.sdk.artifacts).

The helper pod runs the job's own trainer image (it has tar and base64), pulled as the job's pod pulls it
(its imagePullPolicy and imagePullSecrets, as its user), under the restricted Pod Security profile, is owned
by the FineTuneJob (deleting the job removes it), ends by itself after ``HELPER_SECONDS`` and is deleted as
soon as the copy is done. When it cannot start, the error says why in one line (the image cannot be
pulled, the claim is missing, no node fits), within ``START_TIMEOUT``.
"""

from __future__ import annotations

import base64
import io
import posixpath
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from headstart.api import FineTuneJob, names
from headstart.api.pods import restricted_container, restricted_pod
from headstart.api.uris import pvc_claim

from .artifacts import unpack_tar
from .errors import ArtifactError, HeadstartError, Timeout

HELPER_SECONDS = 900
MOUNT = "/claim"
START_TIMEOUT = 120.0
DEFAULT_UID = 1000  # the trainer image's user, when the job's pod template is gone
PULL_FAILURES = ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull", "InvalidImageName",
                 "CreateContainerConfigError")


@dataclass(frozen=True)
class Runs:
    """How the job's own pod runs its image: what the helper pod copies."""

    image: str
    pull_policy: str = "IfNotPresent"
    pull_secrets: tuple[str, ...] = ()
    user: int = DEFAULT_UID
    group: int = DEFAULT_UID


def helper_pod(job: FineTuneJob, uid: str, claim: str, runs: Runs, name: str) -> dict:
    """The helper pod's manifest (pure). It may run where the job's own pods may (spec.scheduling's node
    selector and tolerations): the nodes that reach the job's volumes."""
    scheduling = job.spec.scheduling
    placement: dict = {}
    if scheduling.node_selector:
        placement["nodeSelector"] = dict(scheduling.node_selector)
    if scheduling.tolerations:
        placement["tolerations"] = [t.to_wire(exclude_unset=False) for t in scheduling.tolerations]
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": name,
            "labels": {names.LABEL_FINETUNEJOB: names.label_value(job.name), "app.kubernetes.io/component": "fetch",
                       names.LABEL_NAME: names.APP_NAME},
            "ownerReferences": [names.owner_reference(job.name, uid, controller=False)],
        },
        "spec": {
            **placement,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": HELPER_SECONDS,
            "automountServiceAccountToken": False,
            "securityContext": restricted_pod(runs.user, runs.group),
            **({"imagePullSecrets": [{"name": s} for s in runs.pull_secrets]} if runs.pull_secrets else {}),
            "containers": [{
                "name": "fetch",
                "image": runs.image,
                "imagePullPolicy": runs.pull_policy,
                "command": ["sleep", str(HELPER_SECONDS)],
                "securityContext": restricted_container(readOnlyRootFilesystem=True),
                "volumeMounts": [{"name": "claim", "mountPath": MOUNT, "readOnly": True}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            }],
            "volumes": [{"name": "claim", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        },
    }


def runs_of(template_spec: Any) -> Runs:
    """How a pod template (a kubernetes client V1PodSpec) runs its trainer container."""
    container = next((c for c in template_spec.containers if c.name == names.CONTAINER_NAME),
                     template_spec.containers[0])
    context = template_spec.security_context
    user = (context.run_as_user if context else None) or DEFAULT_UID
    group = (context.run_as_group if context else None) or user
    secrets = tuple(s.name for s in template_spec.image_pull_secrets or () if s.name)
    return Runs(container.image, container.image_pull_policy or "IfNotPresent", secrets, user, group)


def _runs(backend: Any, job: FineTuneJob, raw: dict) -> Runs:
    """How the job's pod ran its image (from its Job), else spec.image with IfNotPresent."""
    training = (raw.get("status") or {}).get("trainingJob")
    if training:
        try:
            found = backend.batch.read_namespaced_job(training, backend.namespace, _request_timeout=(5, 30))
            return runs_of(found.spec.template.spec)
        except Exception:  # noqa: BLE001 - expired (ttlSecondsAfterFinished): fall back
            pass
    if job.spec.image:
        return Runs(job.spec.image)
    raise ArtifactError(f"cannot tell which image FineTuneJob {job.name} ran (its Job is gone and spec.image is "
                        "not set); the helper pod that reads the claim needs one")


def fetch_from_claim(backend: Any, job: FineTuneJob, dest: Path, overwrite: bool) -> Path:
    """The job's model, copied from its PersistentVolumeClaim through a helper pod, verified, into ``dest``.

    The helper pod is deleted once the copy is done or has failed.

    Args:
        backend: The cluster backend (its API clients and namespace).
        job: The job; its status.model must be set, with a pvc:// URI.
        dest: The folder to put the model in.
        overwrite: Whether a folder that is not empty may be replaced.

    Returns:
        The folder the model is in.

    Raises:
        ArtifactError: The image to run cannot be told, the helper pod cannot start or ends first, reading the
            claim fails, or the copy is damaged or does not match the manifest.
        Timeout: The helper pod did not start in time, or the copy took too long.
    """
    assert job.status is not None and job.status.model is not None
    raw = backend.get_raw(job.name)
    claim, path = pvc_claim(job.status.model.uri) or ("", "")
    name = names.child_name(job.name, f"fetch-{uuid.uuid4().hex[:6]}")
    manifest = helper_pod(job, raw["metadata"]["uid"], claim, _runs(backend, job, raw), name)
    backend._call(f"helper pod {name}", backend.core.create_namespaced_pod, backend.namespace, manifest)
    try:
        _wait_running(backend, name)
        folder = posixpath.join(MOUNT, path)
        data = _exec_tar(backend, name, folder)
        return unpack_tar(io.BytesIO(data), dest, manifest_sha256=job.status.model.sha256,
                          source=job.status.model.uri, overwrite=overwrite)
    finally:
        try:
            backend.core.delete_namespaced_pod(name, backend.namespace, grace_period_seconds=0,
                                               _request_timeout=(5, 30))
        except Exception:  # noqa: BLE001 - owned by the job and ends by itself anyway
            pass


def why_not_started(pod: Any) -> tuple[str, bool]:
    """(why the helper pod is not running yet, in one line; whether that is final) from a V1Pod."""
    status = pod.status
    for container in (status.container_statuses or []) if status else []:
        waiting = container.state.waiting if container.state else None
        if waiting and waiting.reason in PULL_FAILURES:
            return f"{waiting.reason}: {' '.join((waiting.message or '').split())}", True
    for cond in (status.conditions or []) if status else []:
        if cond.type == "PodScheduled" and cond.status == "False":
            text = " ".join((cond.message or "no node fits").split())
            claim_missing = "persistentvolumeclaim" in text.lower() and "not found" in text.lower()
            return f"{cond.reason or 'Unschedulable'}: {text}", claim_missing
    return f"phase {(status.phase if status else None) or 'Pending'}", False


def _wait_running(backend: Any, name: str, timeout: float = START_TIMEOUT) -> None:
    from kubernetes import watch

    deadline = time.monotonic() + timeout
    while True:
        pod = backend._call(f"helper pod {name}", backend.core.read_namespaced_pod, name, backend.namespace)
        phase = pod.status.phase if pod.status else None
        if phase == "Running":
            return
        if phase in ("Failed", "Succeeded"):
            raise ArtifactError(f"the helper pod {name} ended ({phase}) before the copy")
        why, final = why_not_started(pod)
        if final:
            raise ArtifactError(f"the helper pod {name} cannot start: {why}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(f"the helper pod {name} did not start within {timeout:g}s: {why}")
        watcher = watch.Watch()
        try:
            for _ in watcher.stream(backend.core.list_namespaced_pod, backend.namespace,
                                    field_selector=f"metadata.name={name}",
                                    resource_version=pod.metadata.resource_version,
                                    timeout_seconds=max(1, int(min(remaining, 30))), _request_timeout=(5, 40)):
                watcher.stop()
        except HeadstartError:
            raise
        except Exception as exc:  # noqa: BLE001
            from .kube import translate

            raise translate(exc, f"helper pod {name}") from exc


def _exec_tar(backend: Any, pod: str, folder: str) -> bytes:
    """The folder as a tar archive: base64 text through exec (the exec stream is text), decoded here."""
    from kubernetes.stream import stream

    command = ["sh", "-c", 'tar -C "$1" -cf - . | base64', "sh", folder]  # the path as an argument, not code
    try:
        client = stream(backend.core.connect_get_namespaced_pod_exec, pod, backend.namespace, command=command,
                        container="fetch", stderr=True, stdin=False, stdout=True, tty=False,
                        _preload_content=False)
    except Exception as exc:  # noqa: BLE001
        from .kube import translate

        raise translate(exc, f"exec in helper pod {pod}") from exc
    out, err = io.StringIO(), io.StringIO()
    deadline = time.monotonic() + HELPER_SECONDS
    try:
        while client.is_open():
            if time.monotonic() > deadline:
                raise Timeout(f"copying {folder} from the claim took longer than {HELPER_SECONDS}s")
            client.update(timeout=5)
            if client.peek_stdout():
                out.write(client.read_stdout())
            if client.peek_stderr():
                err.write(client.read_stderr())
        code = client.returncode
    finally:
        client.close()
    if code not in (0, None):
        raise ArtifactError(f"reading {folder} on the claim failed: {err.getvalue().strip() or f'exit {code}'}")
    try:
        return base64.b64decode("".join(out.getvalue().split()), validate=True)
    except ValueError as exc:
        raise ArtifactError(f"the copy of {folder} arrived damaged: {exc}") from exc
