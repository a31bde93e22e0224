"""Helpers of the operator's cluster tests (a uniquely named module, as trainer_support is): the operator as a
subprocess under its own ServiceAccount, kubeconfigs holding a ServiceAccount token, a kubelet's status writes
with the termination message, and FineTuneJob shortcuts.

The operator runs exactly as in a pod: ``python -m headstart.operator`` with a kubeconfig whose only
credential is a token of ``headstart-system/headstart-operator`` (deploy/rbac.yaml), so a permission that
deploy/ lacks fails a test. Its progress endpoint serves a certificate made once per session
(:class:`Endpoint`, with ``headstart.operator.certs``) on a port that stays the same across restarts;
pods on the real node reach it through a relay into the node's namespace (``node.forward``), the test
process directly on 127.0.0.1 (:func:`post_progress`, with a token the TokenRequest API binds to a pod).
"""

from __future__ import annotations

import base64
import datetime
import json
import os
import signal
import ssl
import subprocess
import sys
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from controlplane.processes import die_with_parent, free_port, http_ok, stop_process, tail_lines
from controlplane.waiting import WaitTimeout, wait_for
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
GROUP, VERSION, PLURAL = "headstart.dev", "v1alpha1", "finetunejobs"
OPERATOR_NS, OPERATOR_SA = "headstart-system", "headstart-operator"
STRATEGIC = "application/strategic-merge-patch+json"
TRAINER_IMAGE = os.environ.get("HEADSTART_TEST_TRAINER_IMAGE", "headstart-trainer:test")


def token_kubeconfig(admin_kubeconfig: Path, token: str, path: Path) -> Path:
    """A kubeconfig for the same API server whose only credential is ``token``."""
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    cluster = admin["clusters"][0]["cluster"]
    config = {
        "apiVersion": "v1", "kind": "Config",
        "clusters": [{"name": "headstart", "cluster": cluster}],
        "users": [{"name": "sa", "user": {"token": token}}],
        "contexts": [{"name": "sa", "context": {"cluster": "headstart", "user": "sa"}}],
        "current-context": "sa",
    }
    path.write_text(yaml.safe_dump(config))
    path.chmod(0o600)
    return path


def ca_file(admin_kubeconfig: Path, path: Path) -> Path:
    admin = yaml.safe_load(admin_kubeconfig.read_text())
    path.write_bytes(base64.b64decode(admin["clusters"][0]["cluster"]["certificate-authority-data"]))
    return path


def service_account_token(kubectl, namespace: str, name: str, hours: int = 2) -> str:
    return kubectl("create", "token", name, "-n", namespace, f"--duration={hours}h").stdout.strip()


@dataclass(frozen=True)
class Endpoint:
    """The operator's progress endpoint in the tests: its port (fixed for the session), certificate files,
    and the URL training pods are given (the real node's address, relayed to the port by node.forward)."""

    port: int
    tls: Path
    pod_url: str

    @classmethod
    def make(cls, workdir: Path) -> Endpoint:
        from controlplane.nodeconfig import NODE_IP

        from headstart.operator import certs

        port = free_port()
        certs.write_files(certs.make_bundle(["127.0.0.1", NODE_IP]), workdir / "tls")
        return cls(port, workdir / "tls", f"https://{NODE_IP}:{port}")

    def args(self) -> list[str]:
        return [f"--progress-port={self.port}", f"--progress-url={self.pod_url}",
                f"--tls-cert-file={self.tls / 'tls.crt'}", f"--tls-key-file={self.tls / 'tls.key'}",
                f"--tls-ca-file={self.tls / 'ca.crt'}"]

    @property
    def ca(self) -> str:
        return (self.tls / "ca.crt").read_text()


def pod_token(api: client.ApiClient, namespace: str, audience: str, pod: client.V1Pod | None = None,
              service_account: str = "default") -> str:
    """A token of ``service_account`` for ``audience`` from the TokenRequest API, bound to ``pod`` when
    given: what the kubelet projects into a training pod (its identity carries the pod's name and uid)."""
    spec: dict[str, Any] = {"audiences": [audience], "expirationSeconds": 600}
    if pod is not None:
        spec["boundObjectRef"] = {"kind": "Pod", "apiVersion": "v1", "name": pod.metadata.name,
                                  "uid": pod.metadata.uid}
    made = client.CoreV1Api(api).create_namespaced_service_account_token(
        service_account, namespace, {"apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest", "spec": spec})
    return made.status.token


def post_progress(endpoint: Endpoint, namespace: str, name: str, token: str | None,
                  snapshot: dict[str, Any]) -> tuple[int, dict[str, Any]]:
    """POST a snapshot to the operator's endpoint as a pod would; (HTTP status, JSON answer)."""
    from headstart.api.progress import endpoint_path

    headers = {"Content-Type": "application/json"}
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    request = urllib.request.Request(f"https://127.0.0.1:{endpoint.port}{endpoint_path(namespace, name)}",
                                     data=json.dumps(snapshot).encode(), method="POST", headers=headers)
    context = ssl.create_default_context(cadata=endpoint.ca)
    try:
        with urllib.request.urlopen(request, timeout=10, context=context) as resp:
            return resp.status, json.loads(resp.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


class OperatorProcess:
    """``python -m headstart.operator --all-namespaces`` (or ``scope``) as a child process, logging to a file."""

    def __init__(self, kubeconfig: Path, workdir: Path, extra_args: tuple[str, ...] = (),
                 scope: tuple[str, ...] = ("--all-namespaces",), endpoint: Endpoint | None = None):
        self.kubeconfig, self.workdir, self.extra_args, self.scope = kubeconfig, workdir, extra_args, scope
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.endpoint = endpoint or Endpoint.make(workdir)
        self.log_path = workdir / "operator.log"
        self.proc: subprocess.Popen | None = None
        self.liveness_port = self.metrics_port = 0
        self.starts = 0

    def start(self, timeout: float = 60.0) -> OperatorProcess:
        self.liveness_port, self.metrics_port = free_port(), free_port()
        argv = [sys.executable, "-m", "headstart.operator", *self.scope,
                f"--liveness-port={self.liveness_port}", f"--metrics-port={self.metrics_port}",
                "--bind-address=127.0.0.1", f"--trainer-image={TRAINER_IMAGE}", "--image-pull-policy=IfNotPresent",
                *self.endpoint.args(), *self.extra_args]
        env = {**os.environ, "KUBECONFIG": str(self.kubeconfig)}
        env.pop("KUBERNETES_SERVICE_HOST", None)  # never mistake the test machine for a pod
        self.workdir.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            log.write(f"--- start {self.starts + 1} ---\n".encode())
            log.flush()
            self.proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                         env=env, cwd=str(REPO), preexec_fn=die_with_parent)
        self.starts += 1
        healthy = http_ok(f"http://127.0.0.1:{self.liveness_port}/healthz")
        wait_for(lambda: self._alive_or_raise() and healthy(), "the operator's /healthz", timeout)
        return self

    def _alive_or_raise(self) -> bool:
        if self.proc is None or self.proc.poll() is not None:
            code = None if self.proc is None else self.proc.returncode
            raise AssertionError(f"the operator exited ({code}):\n{self.log_tail()}")
        return True

    def kill(self) -> None:
        """SIGKILL, as the OOM killer or a node failure would."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(timeout=30)

    def stop(self, grace: float = 15.0) -> None:
        proc, self.proc = self.proc, None
        stop_process(proc, grace)

    def log_tail(self, lines: int = 60) -> str:
        return tail_lines(self.log_path, lines)

    def metrics(self) -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{self.metrics_port}/metrics", timeout=5) as resp:
            return resp.read().decode()

    def metric(self, name: str, labels: str = "") -> float:
        """The value of one sample, e.g. metric('headstart_finetunejobs', 'phase="Running"')."""
        wanted = f"{name}{{{labels}}}" if labels else name
        for line in self.metrics().splitlines():
            if line.startswith(wanted + " "):
                return float(line.rsplit(" ", 1)[1])
        return 0.0

    def reconciles(self) -> float:
        return self.metric("headstart_reconcile_seconds_count")


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0).isoformat()


def finish_pod(api: client.ApiClient, namespace: str, name: str, exit_code: int, message: str = "",
               reason: str | None = None) -> None:
    """Write a terminated trainer container as a kubelet would: exit code, reason and termination message."""
    core = client.CoreV1Api(api)
    pod = core.read_namespaced_pod(name, namespace)
    phase = "Succeeded" if exit_code == 0 else "Failed"
    now = _now()
    terminated = {"exitCode": exit_code, "reason": reason or ("Completed" if exit_code == 0 else "Error"),
                  "startedAt": now, "finishedAt": now}
    if message:
        terminated["message"] = message
    status = {
        "phase": phase, "hostIP": "127.0.0.1", "podIP": "127.0.0.1", "startTime": now,
        "conditions": [{"type": t, "status": s, "lastTransitionTime": now} for t, s in (
            ("PodScheduled", "True"), ("Initialized", "True"), ("ContainersReady", "False"), ("Ready", "False"))],
        "containerStatuses": [{"name": c.name, "image": c.image, "imageID": "", "ready": False, "restartCount": 0,
                               "started": False, "state": {"terminated": terminated}} for c in pod.spec.containers],
    }
    core.patch_namespaced_pod_status(name, namespace, {"status": status}, _content_type=STRATEGIC)


class Jobs:
    """FineTuneJobs and their children in one namespace, as the admin sees them."""

    def __init__(self, api: client.ApiClient, namespace: str):
        self.api, self.ns = api, namespace
        self.custom = client.CustomObjectsApi(api)
        self.batch = client.BatchV1Api(api)
        self.core = client.CoreV1Api(api)

    def create(self, body: dict[str, Any]) -> dict[str, Any]:
        return self.custom.create_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, body)

    def get(self, name: str) -> dict[str, Any]:
        return self.custom.get_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def patch_spec(self, name: str, spec: dict[str, Any]) -> dict[str, Any]:
        return self.custom.patch_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name, {"spec": spec},
                                                          _content_type="application/merge-patch+json")

    def delete(self, name: str) -> None:
        self.custom.delete_namespaced_custom_object(GROUP, VERSION, self.ns, PLURAL, name)

    def status(self, name: str) -> dict[str, Any]:
        return self.get(name).get("status") or {}

    def condition(self, name: str, kind: str) -> dict[str, Any]:
        return next((c for c in self.status(name).get("conditions") or [] if c["type"] == kind), {})

    def wait_status(self, name: str, what: str, test, timeout: float = 30.0) -> dict[str, Any]:
        """Wait until test(status) holds; return that status."""
        def check():
            status = self.status(name)
            return status if test(status) else None
        return wait_for(check, f"FineTuneJob {self.ns}/{name}: {what}", timeout)

    def wait_phase(self, name: str, phase: str, reason: str | None = None, timeout: float = 30.0) -> dict:
        return self.wait_status(name, f"phase {phase} reason {reason}", lambda s: s.get("phase") == phase and (
            reason is None or s.get("reason") == reason), timeout)

    def training_job(self, name: str, timeout: float = 30.0) -> client.V1Job:
        return wait_for(lambda: self.batch.read_namespaced_job(name, self.ns), f"Job {self.ns}/{name}", timeout)

    def pods(self, name: str) -> list[client.V1Pod]:
        return self.core.list_namespaced_pod(self.ns, label_selector=f"headstart.dev/finetunejob={name}").items

    def live_pod(self, name: str, timeout: float = 60.0) -> client.V1Pod:
        def find():
            live = [p for p in self.pods(name) if not p.metadata.deletion_timestamp
                    and p.status.phase in ("Pending", "Running")]
            return live[0] if live else None
        try:
            return wait_for(find, f"a live training pod of {self.ns}/{name}", timeout)
        except WaitTimeout as exc:  # say where the job stood: its status, whether its Job exists
            jobs = [j.metadata.name for j in self.batch.list_namespaced_job(self.ns).items]
            raise WaitTimeout(f"{exc}; the FineTuneJob's status: {self.status(name)}; Jobs: {jobs}") from None

    def wait_gone(self, name: str, timeout: float = 60.0) -> None:
        """Wait until FineTuneJob ``name`` is gone from the API (its finalizer removed by the operator)."""
        def gone() -> bool:
            try:
                self.get(name)
            except client.ApiException as exc:
                if exc.status == 404:
                    return True
                raise
            return False
        wait_for(gone, f"FineTuneJob {self.ns}/{name} gone", timeout, retry_on=())

    def events(self, name: str) -> list[client.CoreV1Event]:
        return self.core.list_namespaced_event(
            self.ns, field_selector=f"involvedObject.name={name},involvedObject.kind=FineTuneJob").items

    def wait_event(self, name: str, reason: str, timeout: float = 30.0) -> client.CoreV1Event:
        return wait_for(lambda: next((e for e in self.events(name) if e.reason == reason), None),
                        f"event {reason} on FineTuneJob {self.ns}/{name}", timeout)


def job_manifest(name: str, **spec_changes: Any) -> dict[str, Any]:
    """A small valid FineTuneJob (image folder in a bucket, one stage, no GPU) with ``spec_changes`` applied.

    Bucket URIs, not pvc://: this control plane has no volume binder, so a pod naming a claim is never
    scheduled (tests that need claims say so). No GPU unless asked: the session's 16 fake GPUs are shared by
    every test, and a deleted namespace's pods free theirs only when the Job controller lets them go. Its own
    output bucket path: a bucket URI is one output across namespaces, so two tests' jobs of one name would
    otherwise wait for each other (OutputInUse)."""
    spec: dict[str, Any] = {
        "baseModel": {"application": "MobileNetV2", "weights": "none"},
        "dataset": {"imageFolder": {"uri": "s3://data/photos"}, "splits": {"validation": 0.2}},
        "stages": [{"name": "head", "trainBase": "none", "epochs": 2,
                    "optimizer": {"type": "Adam", "learningRate": 0.001}}],
        "output": {"uri": f"s3://models/{name}-{uuid.uuid4().hex[:8]}"},
        "resources": {"gpus": 0},
    }
    spec.update(spec_changes)
    return {"apiVersion": f"{GROUP}/{VERSION}", "kind": "FineTuneJob", "metadata": {"name": name}, "spec": spec}


def operator_job(namespace: str, name: str = "j") -> dict[str, Any]:
    """The training Job the operator builds (its own builders) for a small FineTuneJob ``name`` of ``namespace``."""
    from headstart.api.job import FineTuneJob
    from headstart.operator import builders
    from headstart.operator.config import TrainerConfig

    owner = {"apiVersion": f"{GROUP}/{VERSION}", "kind": "FineTuneJob", "metadata": {
        "name": name, "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": job_manifest(name)["spec"]}
    return builders.build_job(owner, FineTuneJob.model_validate(owner), TrainerConfig(image="trainer:1"))


def with_host_path(job: dict[str, Any]) -> dict[str, Any]:
    """A copy of ``job`` that mounts the node's root filesystem."""
    import copy

    bad = copy.deepcopy(job)
    bad["spec"]["template"]["spec"]["volumes"].append({"name": "root", "hostPath": {"path": "/"}})
    return bad
