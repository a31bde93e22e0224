"""Fetching a model from a PersistentVolumeClaim, as `kubectl cp` does: a short-lived helper pod mounts the
claim read-only, ``tar`` streams the model's folder through the API server (exec), and the stream is
unpacked here with every member checked (headstart.sdk.artifacts).

The helper pod runs the job's own trainer image (it has tar and base64) as a non-root user under the
restricted Pod Security profile, is owned by the FineTuneJob (deleting the job removes it), ends by itself
after ``HELPER_SECONDS`` and is deleted as soon as the copy is done.
"""

from __future__ import annotations

import base64
import io
import posixpath
import time
import uuid
from pathlib import Path
from typing import Any

from headstart.api import API_VERSION, KIND, FineTuneJob, names
from headstart.api.uris import pvc_claim

from .artifacts import unpack_tar
from .errors import ArtifactError, HeadstartError, Timeout

HELPER_SECONDS = 900
MOUNT = "/claim"
START_TIMEOUT = 120.0


def helper_pod(job: FineTuneJob, uid: str, claim: str, image: str, name: str) -> dict:
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
            "ownerReferences": [{"apiVersion": API_VERSION, "kind": KIND, "name": job.name, "uid": uid}],
        },
        "spec": {
            **placement,
            "restartPolicy": "Never",
            "activeDeadlineSeconds": HELPER_SECONDS,
            "automountServiceAccountToken": False,
            "securityContext": {"runAsNonRoot": True, "runAsUser": 1000, "runAsGroup": 1000,
                                "seccompProfile": {"type": "RuntimeDefault"}},
            "containers": [{
                "name": "fetch",
                "image": image,
                "command": ["sleep", str(HELPER_SECONDS)],
                "securityContext": {"allowPrivilegeEscalation": False, "capabilities": {"drop": ["ALL"]},
                                    "readOnlyRootFilesystem": True, "runAsNonRoot": True},
                "volumeMounts": [{"name": "claim", "mountPath": MOUNT, "readOnly": True}],
                "resources": {"requests": {"cpu": "50m", "memory": "64Mi"}, "limits": {"memory": "256Mi"}},
            }],
            "volumes": [{"name": "claim", "persistentVolumeClaim": {"claimName": claim, "readOnly": True}}],
        },
    }


def _image(backend: Any, job: FineTuneJob, raw: dict) -> str:
    """The image the job trained with (its Job's), else spec.image."""
    training = (raw.get("status") or {}).get("trainingJob")
    if training:
        try:
            found = backend.batch.read_namespaced_job(training, backend.namespace, _request_timeout=(5, 30))
            return found.spec.template.spec.containers[0].image
        except Exception:  # noqa: BLE001 - expired (ttlSecondsAfterFinished): fall back
            pass
    if job.spec.image:
        return job.spec.image
    raise ArtifactError(f"cannot tell which image FineTuneJob {job.name} ran (its Job is gone and spec.image is "
                        "not set); the helper pod that reads the claim needs one")


def fetch_from_claim(backend: Any, job: FineTuneJob, dest: Path, overwrite: bool) -> Path:
    assert job.status is not None and job.status.model is not None
    raw = backend.get_raw(job.name)
    claim, path = pvc_claim(job.status.model.uri) or ("", "")
    name = names.child_name(job.name, f"fetch-{uuid.uuid4().hex[:6]}")
    manifest = helper_pod(job, raw["metadata"]["uid"], claim, _image(backend, job, raw), name)
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


def _wait_running(backend: Any, name: str) -> None:
    from kubernetes import watch

    deadline = time.monotonic() + START_TIMEOUT
    while True:
        pod = backend._call(f"helper pod {name}", backend.core.read_namespaced_pod, name, backend.namespace)
        phase = pod.status.phase if pod.status else None
        if phase == "Running":
            return
        if phase in ("Failed", "Succeeded"):
            raise ArtifactError(f"the helper pod {name} ended ({phase}) before the copy")
        for status in (pod.status.container_statuses or []) if pod.status else []:
            waiting = status.state.waiting if status.state else None
            if waiting and waiting.reason in ("ErrImagePull", "ImagePullBackOff", "ErrImageNeverPull",
                                              "CreateContainerConfigError"):
                raise ArtifactError(f"the helper pod {name} cannot start: {waiting.reason}: {waiting.message}")
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise Timeout(f"the helper pod {name} did not start within {START_TIMEOUT:g}s")
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
