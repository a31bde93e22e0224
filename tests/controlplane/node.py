"""A real node for the test control plane: containerd, kubelet and kube-proxy in their own namespaces.

    node = Node(control_plane).start()      # Ready, with nvidia.com/gpu advertised
    node.load_image(archive)                # a docker-archive built by tests/node/build-images.sh
    node.stop()                             # nothing left: processes, mounts, namespaces, cgroups, files

What `start` does, in order (what hack/local-up-cluster.sh does, inside namespaces as kind does):
  1. sweeps the cgroups of earlier nodes whose launcher died, makes this node's cgroup tree;
  2. issues the kubelet's client certificate (system:node:NAME in system:nodes), its serving
     certificate, and kube-proxy's (system:kube-proxy), from the control plane's CA;
  3. starts the namespace holder, which sets up the network namespace and loads the firewall
     before anything else runs there (netns.py, nodeconfig.firewall_rules);
  4. opens the two relays between the host's loopback and the namespace (tunnels.py);
  5. starts containerd, imports the pause image (compiled from the pinned module's pause.c);
  6. starts the kubelet, waits for the Node to be Ready, patches nvidia.com/gpu into its capacity;
  7. starts kube-proxy and waits until the `kubernetes` Service is programmed.
"""

from __future__ import annotations

import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from . import binaries, certs, cgroups, images, nodeconfig
from .cluster import SERVICE_CIDR, write_kubeconfig
from .netns import Namespaces, socket_in
from .processes import Component, ComponentError
from .tunnels import Forwarder
from .waiting import wait_for

GPU_RESOURCE = "nvidia.com/gpu"
NODE_LABELS = {"nvidia.com/gpu.present": "true", "headstart.dev/real-node": "true"}
DEFAULT_NODE_NAME = "headstart-node"
WORKDIR_PREFIX = "headstart-node-"


class Node:
    def __init__(self, plane, *, name: str = DEFAULT_NODE_NAME, gpus: int = 4, taints: list[dict] | None = None,
                 start_timeout: float = 120.0, keep_workdir: bool = False) -> None:
        self.plane = plane
        self.name = name
        self.taints = list(taints or [])
        self.gpus = gpus
        self.start_timeout = start_timeout
        self._keep = keep_workdir
        self.workdir = Path(tempfile.mkdtemp(prefix=f"{WORKDIR_PREFIX}{os.getpid()}-"))
        self.state = self.workdir / "state"
        self.cgroup = cgroups.NodeCgroup(uuid.uuid4().hex[:8])
        self.namespaces: Namespaces | None = None
        self.components: list[Component] = []
        self._forwarder: Forwarder | None = None
        self._extra_relays: list[Forwarder] = []
        self._route = None
        self.start_seconds = 0.0
        self.stop_seconds = 0.0
        self.swept: list[str] = []

    # -- public -----------------------------------------------------------------

    @property
    def ip(self) -> str:
        return nodeconfig.NODE_IP

    def start(self) -> Node:
        began = time.monotonic()
        deadline = began + self.start_timeout
        try:
            self._start(deadline)
        except BaseException:
            self.stop()
            raise
        self.start_seconds = time.monotonic() - began
        return self

    def run(self, *argv: str, timeout: float = 60.0, check: bool = True, input: str | None = None):
        """Run a command inside the node's namespaces (e.g. ctr, crictl-like checks, nft)."""
        assert self.namespaces is not None, "start() first"
        return self.namespaces.run(list(argv), timeout=timeout, check=check, input=input)

    def load_image(self, archive: Path, *, ref: str = "", tags: tuple[str, ...] = (), timeout: float = 600.0) -> str:
        """Import a docker-archive into containerd's k8s.io namespace, tag `ref` also as each of `tags`.

        A tag such as `headstart-trainer:latest` (what deploy/ and the operator name by default) is
        stored as the CRI normalizes it, docker.io/library/headstart-trainer:latest."""
        ctr = ("ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io", "images")
        done = self.run(*ctr, "import", "--snapshotter", "overlayfs", str(archive), timeout=timeout)
        for tag in tags:
            self.run(*ctr, "tag", "--force", ref, _normalized(tag))
        return done.stdout

    def images(self) -> list[str]:
        done = self.run("ctr", "--address", "/run/containerd/containerd.sock", "-n", "k8s.io",
                        "images", "list", "-q")
        return done.stdout.split()

    def forward(self, port: int, target_port: int | None = None) -> Forwarder:
        """A relay from the node's address (inside its namespace) to the host's 127.0.0.1: pods reach a
        server of the test process (an operator's endpoint, say) at ``https://NODE_IP:port``. Closed with
        the node, or earlier by ``close()`` (then connections are refused, as a partition would)."""
        assert self.namespaces is not None, "the node is not started"
        listener = socket_in(self.namespaces.netns_fd)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((nodeconfig.NODE_IP, port))
        relay = Forwarder(listener, ("127.0.0.1", target_port or port))
        self._extra_relays.append(relay)
        return relay

    def lose(self) -> None:
        """The node stops answering, as a machine that lost power would: the kubelet stops (no more heartbeats,
        no status) and every pod's processes are killed; containerd, the namespaces and the API objects stay.
        ``revive()`` brings it back."""
        kubelet = next(c for c in self.components if c.name == "kubelet")
        if kubelet.proc is not None:
            kubelet.proc.kill()  # at once, as a power loss: no goodbye to the API server
            kubelet.proc.wait(timeout=30)
        kubelet.stop()
        for pid in cgroups.pids_below(self.cgroup.dirs("kubepods")):
            try:
                os.kill(pid, 9)
            except ProcessLookupError:
                pass

    def revive(self, timeout: float = 120.0) -> None:
        """Start the kubelet again (after ``lose()``): the node is Ready with its GPUs again."""
        deadline = time.monotonic() + timeout
        self.components = [c for c in self.components if c.name != "kubelet"]
        self._start_kubelet(binaries.resolve_node(), deadline)
        self._advertise_gpus(deadline)

    def firewall_counters(self) -> dict[str, int]:
        """Packets refused so far, by rule comment (nodeconfig.REFUSED_TCP, REFUSED_OTHER)."""
        import json

        listing = json.loads(self.run("nft", "-j", "list", "table", "inet", nodeconfig.FIREWALL_TABLE).stdout)
        counters: dict[str, int] = {}
        for item in listing["nftables"]:
            rule = item.get("rule")
            if not rule or "comment" not in rule:
                continue
            for expr in rule["expr"]:
                if "counter" in expr:
                    counters[rule["comment"]] = expr["counter"]["packets"]
        return counters

    def check_alive(self) -> None:
        for comp in self.components:
            comp.check_alive()

    def stop(self) -> None:
        """Stop everything the node started and remove every trace; safe to call twice."""
        began = time.monotonic()
        for comp in reversed(self.components):
            comp.stop(grace=15.0)
        self.components.clear()
        if self._route is not None:
            self.plane.egress.remove_routes(self._route)
            self._route = None
        if self._forwarder is not None:
            self._forwarder.close()
            self._forwarder = None
        for relay in self._extra_relays:
            relay.close()
        self._extra_relays.clear()
        # Shims and containers outlive containerd: they go with the cgroup tree, by pid.
        self.cgroup.destroy()
        if self.namespaces is not None:
            self.namespaces.stop()
            self.namespaces = None
        self._delete_node_object()
        if not self._keep:
            # rm(1) unlinks the unpacked image layers faster than shutil.rmtree
            subprocess.run(["rm", "-rf", "--one-file-system", str(self.workdir)], check=False, timeout=600)
        self.stop_seconds = time.monotonic() - began

    def __enter__(self) -> Node:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # -- steps --------------------------------------------------------------------

    def _start(self, deadline: float) -> None:
        bins = binaries.resolve_node()
        pause_ref, pause_archive = images.build("pause")
        self.swept = self.cgroup.sweep_stale() + _sweep_workdirs(self.workdir.parent)
        self.cgroup.create()
        pki = self._certificates()
        self._grant_apiserver_kubelet_access()
        self._write_configs(pki, pause_ref)
        self.namespaces = Namespaces(
            self.state, nodeconfig.network_setup(self.workdir / "firewall.nft"),
            self.cgroup.procs_files(), self._log("namespaces"))
        self.namespaces.start(timeout=max(deadline - time.monotonic(), 1.0))
        self._open_relays()
        self._start_containerd(bins, deadline)
        self.load_image(pause_archive)
        self._start_kubelet(bins, deadline)
        self._advertise_gpus(deadline)
        self._start_kube_proxy(bins, deadline)

    def _log(self, name: str) -> Path:
        return self.workdir / "logs" / f"{name}.log"

    def _certificates(self) -> dict[str, certs.CertPair]:
        directory = self.plane.workdir / "pki"
        node = self.name
        return {
            "kubelet": certs.issue(directory, f"kubelet-{node}", f"system:node:{node}", orgs=("system:nodes",)),
            "serving": certs.issue(directory, f"kubelet-serving-{node}", node,
                                   server_ips=(nodeconfig.NODE_IP,), server_dns=(node,)),
            "kube-proxy": certs.issue(directory, f"kube-proxy-{node}", "system:kube-proxy"),
        }

    def _grant_apiserver_kubelet_access(self) -> None:
        """The API server's client certificate may use the kubelet API (logs, exec), as kubeadm sets up."""
        from kubernetes import client

        body = client.V1ClusterRoleBinding(
            metadata=client.V1ObjectMeta(name="headstart:kube-apiserver-kubelet-client"),
            role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="ClusterRole",
                                      name="system:kubelet-api-admin"),
            subjects=[client.RbacV1Subject(api_group="rbac.authorization.k8s.io", kind="User",
                                           name=certs.KUBELET_CLIENT_USER)],
        )
        with self.plane.api_client() as api:
            try:
                client.RbacAuthorizationV1Api(api).create_cluster_role_binding(body)
            except client.ApiException as exc:
                if exc.status != 409:
                    raise

    def _write_configs(self, pki: dict[str, certs.CertPair], pause_ref: str) -> None:
        self.state.mkdir(parents=True, exist_ok=True)
        port = self.plane.server.rsplit(":", 1)[1]
        server = f"https://{nodeconfig.NODE_IP}:{port}"
        ca = self.plane.pki.ca.cert
        w = self.workdir
        write_kubeconfig(w / "kubelet.kubeconfig", server, ca, pki["kubelet"].cert, pki["kubelet"].key,
                         f"system:node:{self.name}")
        write_kubeconfig(w / "kube-proxy.kubeconfig", server, ca, pki["kube-proxy"].cert, pki["kube-proxy"].key,
                         "system:kube-proxy")
        (w / "firewall.nft").write_text(nodeconfig.firewall_rules())
        (w / "cni").mkdir(exist_ok=True)
        (w / "cni" / "10-headstart.conflist").write_text(nodeconfig.cni_config())
        (w / "containerd.toml").write_text(
            nodeconfig.containerd_config(self.state, w / "cni", pause_ref))
        # No cluster DNS: a pod's resolv.conf names no server, so a name lookup fails at once.
        (w / "resolv.conf").write_text("# headstart test node: no DNS server\noptions timeout:1 attempts:1\n")
        (w / "kubelet.json").write_text(nodeconfig.kubelet_config(
            state=self.state, cgroup_root=self.cgroup.path, ca=ca, serving_cert=pki["serving"].cert,
            serving_key=pki["serving"].key, resolv_conf=w / "resolv.conf", cgroup_v1=cgroups.cgroup_v1()))
        (w / "kube-proxy.json").write_text(nodeconfig.kube_proxy_config(w / "kube-proxy.kubeconfig", self.name))

    def _open_relays(self) -> None:
        assert self.namespaces is not None
        fd = self.namespaces.netns_fd
        port = int(self.plane.server.rsplit(":", 1)[1])
        listener = socket_in(fd)
        listener.bind((nodeconfig.NODE_IP, port))
        self._forwarder = Forwarder(listener, ("127.0.0.1", port))

        def make_socket(family: int) -> socket.socket:
            return socket_in(fd, family)

        self._route = make_socket
        for network in (f"{nodeconfig.NODE_IP}/32", nodeconfig.POD_CIDR, SERVICE_CIDR):
            self.plane.egress.add_route(network, make_socket)

    def _component(self, name: str, argv: list[str], ready, deadline: float) -> Component:
        assert self.namespaces is not None
        comp = Component(name, ["/bin/sh", *self.namespaces.command(argv)[1:]], self._log(name), ready)
        self.components.append(comp)
        comp.start()
        comp.wait_ready(deadline)
        return comp

    def _start_containerd(self, bins: dict[str, Path], deadline: float) -> None:
        assert self.namespaces is not None
        sock = Path(f"/proc/{self.namespaces.pid}/root/run/containerd/containerd.sock")

        def ready() -> bool:
            if not sock.exists():
                return False
            return self.run("ctr", "--address", "/run/containerd/containerd.sock", "version",
                            check=False, timeout=10).returncode == 0

        self._component("containerd", [shutil.which("containerd") or "containerd",
                                       "--config", str(self.workdir / "containerd.toml")], ready, deadline)

    def _start_kubelet(self, bins: dict[str, Path], deadline: float) -> None:
        from kubernetes import client

        api = self.plane.api_client()
        core = client.CoreV1Api(api)

        def ready() -> bool:
            try:
                node = core.read_node(self.name)
            except client.ApiException:
                return False
            return any(c.type == "Ready" and c.status == "True" for c in node.status.conditions or ())

        labels = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
        taints = ",".join(f"{t['key']}={t['value']}:{t['effect']}" for t in self.taints)
        try:
            self._component("kubelet", [
                str(bins["kubelet"]),
                f"--config={self.workdir / 'kubelet.json'}",
                f"--kubeconfig={self.workdir / 'kubelet.kubeconfig'}",
                f"--hostname-override={self.name}",
                f"--node-ip={nodeconfig.NODE_IP}",
                f"--root-dir={self.state / 'kubelet'}",
                f"--cert-dir={self.state / 'kubelet-pki'}",
                f"--node-labels={labels}",
                *([f"--register-with-taints={taints}"] if taints else []),
                "--v=1",
            ], ready, deadline)
        finally:
            api.close()

    def _advertise_gpus(self, deadline: float) -> None:
        """The documented way to advertise an extended resource without a device plugin."""
        from kubernetes import client

        with self.plane.api_client() as api:
            core = client.CoreV1Api(api)
            patch = [{"op": "add", "path": "/status/capacity/nvidia.com~1gpu", "value": str(self.gpus)}]
            core.patch_node_status(self.name, patch)
            wait_for(lambda: (core.read_node(self.name).status.allocatable or {}).get(GPU_RESOURCE)
                     == str(self.gpus), f"node {self.name} to report {GPU_RESOURCE} allocatable",
                     max(deadline - time.monotonic(), 1.0))

    def _start_kube_proxy(self, bins: dict[str, Path], deadline: float) -> None:
        def ready() -> bool:
            done = self.run("iptables-save", "-t", "nat", check=False, timeout=10)
            return "default/kubernetes:https" in done.stdout

        self._component("kube-proxy", [str(bins["kube-proxy"]),
                                       f"--config={self.workdir / 'kube-proxy.json'}", "--v=1"], ready, deadline)

    def _delete_node_object(self) -> None:
        if not self.plane.components:  # the control plane is already gone
            return
        from kubernetes import client

        try:
            with self.plane.api_client() as api:
                client.CoreV1Api(api).delete_node(self.name)
        except (client.ApiException, OSError, ComponentError):
            pass



def _normalized(ref: str) -> str:
    """An image reference as containerd's CRI stores it (docker.io/library/ for a bare name)."""
    name = ref.split("/")[0]
    if "/" not in ref:
        return f"docker.io/library/{ref}"
    if "." not in name and ":" not in name and name != "localhost":
        return f"docker.io/{ref}"
    return ref


def _sweep_workdirs(parent: Path) -> list[str]:
    """Remove work directories of nodes whose launcher died (their cgroup trees are swept first)."""
    swept = []
    for entry in parent.glob(f"{WORKDIR_PREFIX}*"):
        match = re.match(rf"{WORKDIR_PREFIX}(\d+)-", entry.name)
        if match and entry.is_dir() and not Path(f"/proc/{match.group(1)}").exists():
            shutil.rmtree(entry, ignore_errors=True)
            swept.append(entry.name)
    return swept
