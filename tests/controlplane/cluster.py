"""A real, single-host Kubernetes control plane for tests and for humans.

    with ControlPlane() as cp:
        cp.kubeconfig          # admin kubeconfig (client-certificate auth)
        cp.api_client()        # kubernetes.client.ApiClient as that admin

Start order is etcd -> kube-apiserver -> kube-controller-manager and
kube-scheduler; teardown is the reverse.  Each component listens on
127.0.0.1 only, on ports the OS picked at start.  Fake Node objects with
nvidia.com/gpu capacity (their leases renewed, so the node lifecycle
controller keeps them Ready) let the scheduler bind pods, and tests drive pod
status through the API (see kubelet.py).  A real node (node.py) can join.

Security as in a real cluster: RBAC and the Node authorizer, NodeRestriction
admission, no anonymous access; the API server reaches kubelets with its own
client certificate, and only through the egress proxy (tunnels.py), which
dials loopback or the networks a real node registered, and nothing else.
"""

from __future__ import annotations

import shutil
import ssl
import tempfile
import time
from pathlib import Path

import yaml

from . import binaries, certs, kubelet
from .processes import Component, ComponentError, free_port, http_ok, https_ok
from .tunnels import EgressProxy, egress_selector_config

#: Controllers kube-controller-manager runs.  Deliberately absent: cloud,
#: attach/detach, certificate and IPAM controllers the suite does not exercise
#: (a real node's pod range is fixed in its CNI configuration).
CONTROLLERS = (
    "job-controller",
    "cronjob-controller",
    "garbage-collector-controller",
    "namespace-controller",
    "serviceaccount-controller",
    "serviceaccount-token-controller",
    "ttl-after-finished-controller",
    "root-ca-certificate-publisher-controller",
    "clusterrole-aggregation-controller",  # fills admin/edit/view from aggregated roles
    "pod-garbage-collector-controller",
    "replicaset-controller",
    "deployment-controller",
    "resourcequota-controller",
    "node-lifecycle-controller",  # real and fake nodes heartbeat through their Leases
    "taint-eviction-controller",
    "persistentvolume-binder-controller",  # claims bind to (hostPath) volumes as in a real cluster
    "persistentvolume-protection-controller",
    "persistentvolumeclaim-protection-controller",
    "endpoints-controller",  # Services route to pods on a real node (kube-proxy)
    "endpointslice-controller",
    "endpointslice-mirroring-controller",
)
SERVICE_CIDR = "10.0.0.0/24"
SA_ISSUER = "https://kubernetes.default.svc.cluster.local"
DEFAULT_START_TIMEOUT = 120.0


def write_kubeconfig(path: Path, server: str, ca: Path, cert: Path, key: Path, user: str) -> Path:
    """A self-contained kubeconfig (PEM data inlined, base64 as kubeconfig wants)."""
    import base64

    def b64(p: Path) -> str:
        return base64.b64encode(p.read_bytes()).decode()

    config = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "headstart", "cluster": {
            "server": server, "certificate-authority-data": b64(ca)}}],
        "users": [{"name": user, "user": {
            "client-certificate-data": b64(cert), "client-key-data": b64(key)}}],
        "contexts": [{"name": "headstart", "context": {"cluster": "headstart", "user": user}}],
        "current-context": "headstart",
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(yaml.safe_dump(config, sort_keys=False))
    tmp.chmod(0o600)
    tmp.replace(path)
    return path


class ControlPlane:
    """etcd, kube-apiserver, kube-controller-manager and kube-scheduler."""

    def __init__(
        self,
        bins: dict[str, Path] | None = None,
        workdir: Path | None = None,
        start_timeout: float = DEFAULT_START_TIMEOUT,
        gpu_nodes: int = 2,
        gpus_per_node: int = 8,
        keep_workdir: bool = False,
    ) -> None:
        self._bins = bins
        self._own_workdir = workdir is None and not keep_workdir
        self.workdir = workdir or Path(tempfile.mkdtemp(prefix="headstart-cp-"))
        self.start_timeout = start_timeout
        self.gpu_nodes = gpu_nodes
        self.gpus_per_node = gpus_per_node
        self.components: list[Component] = []  # running, in start order
        self.started: list[Component] = []  # every component ever started
        self.kubeconfig = self.workdir / "admin.kubeconfig"
        self.server = ""
        self.node_names: list[str] = []
        self.start_seconds = 0.0
        self.egress: EgressProxy | None = None
        self._heartbeats: kubelet.Heartbeats | None = None

    # -- public -----------------------------------------------------------------

    @property
    def bins(self) -> dict[str, Path]:
        if self._bins is None:
            self._bins = binaries.resolve()
        return self._bins

    @property
    def bin_dir(self) -> Path:
        """Directory holding kubectl (prepend to PATH to use it by hand)."""
        return self.bins["kubectl"].parent

    def start(self) -> ControlPlane:
        began = time.monotonic()
        deadline = began + self.start_timeout
        try:
            bins = self.bins
            self.pki = certs.generate(self.workdir / "pki")
            self.egress = EgressProxy(self.workdir / "egress.sock", self._log("egress-proxy"))
            self._start(self._etcd(bins["etcd"]), deadline)
            self._start(self._apiserver(bins["kube-apiserver"]), deadline)
            write_kubeconfig(
                self.kubeconfig, self.server, self.pki.ca.cert,
                self.pki.admin.cert, self.pki.admin.key, "headstart-admin",
            )
            for comp in (self._controller_manager(bins), self._scheduler(bins)):
                self.components.append(comp)
                self.started.append(comp)
                comp.start()
            for comp in self.components[2:]:
                comp.wait_ready(deadline)
            with self.api_client() as api:
                self.node_names = kubelet.create_gpu_nodes(
                    api, self.gpu_nodes, self.gpus_per_node, deadline
                )
            self._heartbeats = kubelet.Heartbeats(self.api_client, self.node_names)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def check_alive(self) -> None:
        """Raise ComponentError if any component has died since start."""
        for comp in self.components:
            comp.check_alive()

    def stop_storage_and_api(self) -> None:
        """Stop kube-apiserver, then etcd (SIGTERM, as a restart or an upgrade would): every client of the API,
        the controllers, the nodes and the operator, loses it until start_storage_and_api."""
        for name in ("kube-apiserver", "etcd"):
            self._component(name).stop(grace=15.0)

    def start_storage_and_api(self) -> None:
        """Start etcd on its data, then kube-apiserver, on the same addresses and keys as before; ready."""
        deadline = time.monotonic() + self.start_timeout
        for name in ("etcd", "kube-apiserver"):
            comp = self._component(name)
            comp.start()
            comp.wait_ready(deadline)

    def _component(self, name: str) -> Component:
        return next(comp for comp in self.components if comp.name == name)

    def stop(self) -> None:
        """Stop components in reverse start order; never leaves a child behind."""
        if self._heartbeats is not None:
            self._heartbeats.stop()
            self._heartbeats = None
        while self.components:
            self.components.pop().stop()
        if self.egress is not None:
            self.egress.close()
            self.egress = None
        if self._own_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)

    def api_client(self):
        from kubernetes import config

        return config.new_client_from_config(config_file=str(self.kubeconfig))

    def __enter__(self) -> ControlPlane:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- components -------------------------------------------------------------

    def _start(self, comp: Component, deadline: float) -> None:
        self.components.append(comp)
        self.started.append(comp)
        comp.start()
        comp.wait_ready(deadline)

    def _tls(self) -> ssl.SSLContext:
        ctx = ssl.create_default_context(cafile=str(self.pki.ca.cert))
        ctx.load_cert_chain(str(self.pki.admin.cert), str(self.pki.admin.key))
        return ctx

    def _log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def _etcd(self, binary: Path) -> Component:
        client, peer = free_port(), free_port()
        self.etcd_url = f"http://127.0.0.1:{client}"
        peer_url = f"http://127.0.0.1:{peer}"
        argv = [
            str(binary),
            "--name=headstart",
            f"--data-dir={self.workdir / 'etcd'}",
            f"--listen-client-urls={self.etcd_url}",
            f"--advertise-client-urls={self.etcd_url}",
            f"--listen-peer-urls={peer_url}",
            f"--initial-advertise-peer-urls={peer_url}",
            f"--initial-cluster=headstart={peer_url}",
            "--initial-cluster-state=new",
            "--unsafe-no-fsync",
            "--log-level=warn",
        ]
        return Component("etcd", argv, self._log("etcd"), http_ok(f"{self.etcd_url}/health"))

    def _apiserver(self, binary: Path) -> Component:
        port = free_port()
        self.server = f"https://127.0.0.1:{port}"
        p = self.pki
        argv = [
            str(binary),
            f"--etcd-servers={self.etcd_url}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--cert-dir={self.workdir / 'apiserver'}",
            f"--tls-cert-file={p.serving.cert}",
            f"--tls-private-key-file={p.serving.key}",
            f"--client-ca-file={p.ca.cert}",
            "--authorization-mode=Node,RBAC",
            # OwnerReferencesPermissionEnforcement as OpenShift has it on: an owner reference that blocks the
            # owner's deletion needs the right to update the owner's finalizers
            "--enable-admission-plugins=NodeRestriction,OwnerReferencesPermissionEnforcement",
            "--anonymous-auth=false",
            # The `kubernetes` Service's endpoint: the API server's address inside a node's
            # network namespace, where the node's relay listens (tunnels.Forwarder).
            f"--advertise-address={certs.NODE_SIDE_IP}",
            f"--kubelet-client-certificate={p.kubelet_client.cert}",
            f"--kubelet-client-key={p.kubelet_client.key}",
            f"--kubelet-certificate-authority={p.ca.cert}",
            "--kubelet-preferred-address-types=InternalIP",
            "--egress-selector-config-file="
            f"{egress_selector_config(self.workdir / 'egress-selector.yaml', self.egress.path)}",
            f"--service-account-issuer={SA_ISSUER}",
            f"--service-account-key-file={p.sa_public}",
            f"--service-account-signing-key-file={p.sa_private}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--allow-privileged=true",
            "--profiling=false",
        ]
        ctx = self._tls()
        return Component("kube-apiserver", argv, self._log("kube-apiserver"),
                         https_ok(f"{self.server}/readyz", ctx))

    def _component_kubeconfig(self, name: str, pair: certs.CertPair) -> Path:
        return write_kubeconfig(
            self.workdir / f"{name}.kubeconfig", self.server, self.pki.ca.cert,
            pair.cert, pair.key, f"system:{name}",
        )

    def _serving_flags(self, name: str, kubeconfig: Path) -> tuple[list[str], str]:
        port = free_port()
        flags = [
            f"--kubeconfig={kubeconfig}",
            f"--authentication-kubeconfig={kubeconfig}",
            f"--authorization-kubeconfig={kubeconfig}",
            "--bind-address=127.0.0.1",
            f"--secure-port={port}",
            f"--tls-cert-file={self.pki.serving.cert}",
            f"--tls-private-key-file={self.pki.serving.key}",
            "--leader-elect=false",
            "--profiling=false",
        ]
        return flags, f"https://127.0.0.1:{port}/healthz"

    def _controller_manager(self, bins: dict[str, Path]) -> Component:
        name = "kube-controller-manager"
        flags, health = self._serving_flags(
            name, self._component_kubeconfig(name, self.pki.controller_manager))
        argv = [
            str(bins[name]), *flags,
            f"--controllers={','.join(CONTROLLERS)}",
            # each controller acts as its own kube-system ServiceAccount
            "--use-service-account-credentials=true",
            f"--service-account-private-key-file={self.pki.sa_private}",
            f"--root-ca-file={self.pki.ca.cert}",
            f"--service-cluster-ip-range={SERVICE_CIDR}",
            "--concurrent-job-syncs=5",
        ]
        return Component(name, argv, self._log(name), https_ok(health, self._tls()))

    def _scheduler(self, bins: dict[str, Path]) -> Component:
        name = "kube-scheduler"
        flags, health = self._serving_flags(
            name, self._component_kubeconfig(name, self.pki.scheduler))
        return Component(name, [str(bins[name]), *flags], self._log(name),
                         https_ok(health, self._tls()))


__all__ = ["ControlPlane", "ComponentError", "write_kubeconfig"]
