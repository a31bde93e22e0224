"""Kueue's controller manager in the test cluster: built from its Go module, started as a process.

    kueue = Kueue(plane).start()     # CRDs, webhooks, RBAC, the process ready; kueue.stop() undoes it

:func:`build` runs tests/kueue/build.sh (cached; a cold build takes about 5 minutes). :meth:`Kueue.start`,
every wait bounded by one deadline:

1. the ``kueue-system`` namespace, and certificates (``kueue_manifests.make_pki``) in the Secret that
   Kueue's internal certificate manager reads and keeps, and in the webhook server's certificate
   directory (where a pod would mount that Secret);
2. Kueue's CRDs (from the module zip), Established; its webhook configurations, by URL on
   127.0.0.1:<port>; its manager ClusterRole and secrets Role, bound to a client certificate of its own
   from the control plane's CA (``kueue-controller-manager``);
3. the process (``--config``: batch/v1 Jobs only, queued by their ``kueue.x-k8s.io/queue-name`` label),
   ready when its /readyz answers and a server-side dry run of a ResourceFlavor passes its webhooks.

:meth:`Kueue.stop` deletes the webhook configurations first (the API server would otherwise call a dead
webhook for every Job), then stops the process; its files live in the control plane's work directory.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path

import yaml

from . import certs, kueue_manifests
from .cluster import write_kubeconfig
from .processes import Component, ComponentError, free_port, http_ok
from .waiting import WaitTimeout, wait_for

HERE = Path(__file__).resolve().parent
BUILD_SCRIPT = HERE.parent / "kueue" / "build.sh"
DEFAULT_START_TIMEOUT = 180.0
PROBE_FLAVOR = """apiVersion: kueue.x-k8s.io/v1beta2
kind: ResourceFlavor
metadata:
  name: headstart-webhook-probe
"""


class KueueBuildFailed(RuntimeError):
    pass


def build(timeout: float = 1800.0) -> Path:
    """The directory with bin/kueue and Kueue's config (build.sh: a cache hit takes well under a second)."""
    try:
        done = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise KueueBuildFailed(f"{BUILD_SCRIPT} did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise KueueBuildFailed(f"{BUILD_SCRIPT} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    return Path(done.stdout.strip().splitlines()[-1])


class Kueue:
    """Kueue's controller manager against ``plane`` (a started :class:`~.cluster.ControlPlane`)."""

    def __init__(self, plane, dist: Path | None = None, start_timeout: float = DEFAULT_START_TIMEOUT) -> None:
        self.plane = plane
        self.dist = dist
        self.start_timeout = start_timeout
        self.workdir = plane.workdir / "kueue"
        self.log_path = plane.workdir / "logs" / "kueue.log"
        self.component: Component | None = None
        self.start_seconds = 0.0
        self.webhook_url = ""

    # -- public -----------------------------------------------------------------------------------------

    def start(self) -> Kueue:
        self.dist = self.dist or build()  # a cache hit, or a build bounded by its own timeout
        began = time.monotonic()
        deadline = began + self.start_timeout
        try:
            health_port, webhook_port = free_port(), free_port()
            self.webhook_url = f"https://127.0.0.1:{webhook_port}"
            self._install(deadline)
            self._start_process(health_port, webhook_port, deadline)
            self._wait_webhooks(deadline)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def stop(self) -> None:
        """Webhook configurations first, then the process (SIGTERM, then SIGKILL); idempotent."""
        if self.webhook_url:
            self.kubectl("delete", "--ignore-not-found", "--wait=false", "--request-timeout=10s",
                         f"mutatingwebhookconfiguration/{kueue_manifests.MUTATING}",
                         f"validatingwebhookconfiguration/{kueue_manifests.VALIDATING}", check=False, timeout=30)
            self.webhook_url = ""
        if self.component is not None:
            self.component.stop()
            self.component = None

    def check_alive(self) -> None:
        if self.component is not None:
            self.component.check_alive()

    def kubectl(self, *args: str, input: str | None = None, check: bool = True,
                timeout: float = 120.0) -> subprocess.CompletedProcess:
        argv = [str(self.plane.bins["kubectl"]), f"--kubeconfig={self.plane.kubeconfig}", *args]
        done = subprocess.run(argv, input=input, capture_output=True, text=True, timeout=timeout)
        if check and done.returncode != 0:
            raise ComponentError("kueue", f"kubectl {' '.join(args)} failed: {done.stderr.strip()}", self.log_path)
        return done

    def __enter__(self) -> Kueue:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- steps ------------------------------------------------------------------------------------------

    def _apply(self, objects: list[dict], timeout: float) -> None:
        # Server-side: the CRDs are too large for kubectl's last-applied annotation.
        self.kubectl("apply", "--server-side", "--force-conflicts", "--field-manager=headstart-harness", "-f", "-",
                     input=kueue_manifests.dump(objects), timeout=max(timeout, 10.0))

    def _install(self, deadline: float) -> None:
        pki = kueue_manifests.make_pki()
        pki.write(self.workdir / "certs")
        namespace = {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": kueue_manifests.NAMESPACE}}
        self._apply([namespace, pki.secret(), *kueue_manifests.rbac(self.dist)], deadline - time.monotonic())
        crds = kueue_manifests.crds(self.dist, self.webhook_url, pki.ca_pem)
        self._apply(crds, deadline - time.monotonic())
        names = [f"crd/{c['metadata']['name']}" for c in crds]
        left = max(int(deadline - time.monotonic()), 1)
        self.kubectl("wait", "--for=condition=Established", f"--timeout={left}s", *names, timeout=left + 10)
        self._apply(kueue_manifests.webhooks(self.dist, self.webhook_url, pki.ca_pem), deadline - time.monotonic())

    def _client_kubeconfig(self) -> Path:
        pair = certs.issue(self.plane.workdir / "pki", "kueue", kueue_manifests.USER)
        return write_kubeconfig(self.workdir / "kueue.kubeconfig", self.plane.server, self.plane.pki.ca.cert,
                                pair.cert, pair.key, kueue_manifests.USER)

    def _start_process(self, health_port: int, webhook_port: int, deadline: float) -> None:
        config = self.workdir / "config.yaml"
        config.write_text(yaml.safe_dump(kueue_manifests.configuration(health_port, webhook_port,
                                                                       self.workdir / "certs")))
        argv = [str(self.dist / "bin" / "kueue"), f"--config={config}", f"--kubeconfig={self._client_kubeconfig()}",
                # its visibility API would be an aggregated API server behind a Service: not here
                "--feature-gates=VisibilityOnDemand=false", "--zap-log-level=info"]
        self.component = Component("kueue", argv, self.log_path, http_ok(f"http://127.0.0.1:{health_port}/readyz"))
        self.component.start()
        self.component.wait_ready(deadline)

    def _wait_webhooks(self, deadline: float) -> None:
        """The API server reaches the webhooks (the dry run calls them) with the CA Kueue keeps."""
        def passes() -> bool:
            self.component.check_alive()
            done = self.kubectl("create", "--dry-run=server", "-f", "-", input=PROBE_FLAVOR, check=False, timeout=30)
            if done.returncode != 0:
                raise RuntimeError(done.stderr.strip())
            return True

        try:
            wait_for(passes, "Kueue's webhooks answering the API server", max(deadline - time.monotonic(), 1.0))
        except WaitTimeout as exc:
            raise ComponentError("kueue", str(exc), self.log_path) from exc
