"""pytest fixtures for tests that need the real Kubernetes control plane.

Register them from exactly one conftest.py (each registration is a separate
session fixture, so two would start two clusters): tests/conftest.py imports
them by name, for tests/cluster (Headstart's tests) and
tests/controlplane_selftest (the control plane's own).

control_plane_bins (session) {name: path}, found or built during collection
control_plane  (session)  etcd + kube-apiserver + kube-controller-manager +
                          kube-scheduler, started once per pytest session
kubeconfig     (session)  path of the admin kubeconfig
api_client     (session)  kubernetes.client.ApiClient as cluster admin
bin_dir        (session)  directory holding kubectl and the other binaries
kubectl        (session)  run kubectl against the cluster: kubectl("get", "pods", ...)
kubelet        (session)  act as a kubelet: kubelet.set_phase(ns, pod, "Succeeded")
new_namespace  (function) factory for extra namespaces, deleted after the test
namespace      (function) a fresh namespace whose default ServiceAccount exists
node           (session)  a real node (containerd, kubelet, kube-proxy in their own namespaces,
                          node.py), started on first request; tainted
                          headstart.dev/real-node=true:NoSchedule so that only pods that
                          tolerate it (and select it) run there, not the fake nodes' pods
node_image     (session)  node_image("trainer") -> image ref, built (cached) and imported once,
                          also tagged headstart-trainer:latest (headstart-operator:latest), the
                          names deploy/ and the operator use by default
host_path_volume (function) host_path_volume(size="1Gi") -> (PersistentVolume name, host dir),
                          a hostPath volume for claims to bind; deleted after the test
kueue          (session)  Kueue's controller manager (kueue.py), built from its Go module during
                          collection when a test asks for it, started on first request: its CRDs,
                          webhooks and RBAC installed, batch/v1 Jobs with a queue-name label managed

A missing binary or a failed start fails the session; it is never a skip.
HEADSTART_CP_KEEP=1 keeps the control plane's work directory (logs, PKI) after
the session; HEADSTART_CP_START_TIMEOUT (seconds, default 180) bounds start.
"""

from __future__ import annotations

import os
import subprocess
import uuid
from pathlib import Path

import pytest

from . import binaries, images
from . import kubelet as fake_kubelet
from . import kueue as kueue_build
from .cluster import ControlPlane
from .node import Node
from .processes import ComponentError
from .waiting import wait_for

START_TIMEOUT = float(os.environ.get("HEADSTART_CP_START_TIMEOUT", "180"))
BINS = pytest.StashKey[object]()
KUEUE_DIST = pytest.StashKey[object]()


def pytest_collection_modifyitems(config, items):
    """Every test that (indirectly) uses the control plane carries the `cluster` marker."""
    for item in items:
        if "control_plane_bins" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.cluster)


def pytest_collection_finish(session):
    """Find or build the binaries before any test runs, outside per-test timeouts.

    A cache hit takes a second; a cold build (tens of minutes) happens here only
    when `make controlplane` was not run first."""
    if session.config.option.collectonly:
        return
    if not any(item.get_closest_marker("cluster") for item in session.items):
        return
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("control plane: locating binaries (building them if not cached) ...")
    try:
        session.config.stash[BINS] = binaries.resolve()
    except binaries.BinariesMissing as exc:
        session.config.stash[BINS] = exc
    if any("kueue" in getattr(item, "fixturenames", ()) for item in session.items):
        if reporter is not None:
            reporter.write_line("kueue: locating its build (building it from its Go module if not cached) ...")
        try:
            session.config.stash[KUEUE_DIST] = kueue_build.build()
        except kueue_build.KueueBuildFailed as exc:
            session.config.stash[KUEUE_DIST] = exc


@pytest.fixture(scope="session")
def control_plane_bins(pytestconfig) -> dict:
    """{name: path} of etcd, kube-apiserver, kube-controller-manager, kube-scheduler, kubectl."""
    bins = pytestconfig.stash.get(BINS, None)
    if bins is None:  # the collection hook did not run (e.g. a plugin deselected late)
        try:
            bins = binaries.resolve()
        except binaries.BinariesMissing as exc:
            bins = exc
    if isinstance(bins, Exception):
        pytest.fail(f"control-plane binaries unavailable: {bins}", pytrace=False)
    return bins


@pytest.fixture(scope="session")
def control_plane(control_plane_bins):
    bins = control_plane_bins
    keep = bool(os.environ.get("HEADSTART_CP_KEEP"))
    plane = ControlPlane(bins=bins, start_timeout=START_TIMEOUT, keep_workdir=keep)
    try:
        plane.start()
    except ComponentError as exc:
        pytest.fail(f"control plane failed to start:\n{exc}", pytrace=False)
    print(f"\ncontrol plane ready in {plane.start_seconds:.1f}s at {plane.server}"
          + (f" (kept: {plane.workdir})" if keep else ""))
    try:
        yield plane
    finally:
        plane.stop()


@pytest.fixture(scope="session")
def kubeconfig(control_plane) -> Path:
    return control_plane.kubeconfig


@pytest.fixture(scope="session")
def bin_dir(control_plane) -> Path:
    return control_plane.bin_dir


@pytest.fixture(scope="session")
def api_client(control_plane):
    api = control_plane.api_client()
    try:
        yield api
    finally:
        api.close()


@pytest.fixture(scope="session")
def kubectl(control_plane):
    """kubectl(*args, input=None, check=True) -> CompletedProcess (text, 60s bound)."""
    env = {**os.environ, "KUBECONFIG": str(control_plane.kubeconfig)}

    def run(*args: str, input: str | None = None, check: bool = True, timeout: float = 60.0):
        done = subprocess.run(
            [str(control_plane.bins["kubectl"]), *args],
            input=input, capture_output=True, text=True, env=env, timeout=timeout,
        )
        if check and done.returncode != 0:
            raise AssertionError(
                f"kubectl {' '.join(args)} failed ({done.returncode}):\n{done.stderr}")
        return done

    return run


class Kubelet:
    """Drives pod status through the API, as the (absent) kubelet would."""

    def __init__(self, api, node_names: list[str]) -> None:
        self.api = api
        self.node_names = node_names

    def set_phase(self, namespace: str, pod: str, phase: str, exit_code: int | None = None):
        return fake_kubelet.set_pod_phase(self.api, namespace, pod, phase, exit_code)

    def wait_scheduled(self, namespace: str, pod: str, timeout: float = 60.0) -> str:
        return fake_kubelet.wait_scheduled(self.api, namespace, pod, timeout)


@pytest.fixture(scope="session")
def kubelet(control_plane, api_client) -> Kubelet:
    return Kubelet(api_client, control_plane.node_names)


@pytest.fixture
def new_namespace(api_client, request):
    """Create namespaces named after the test; delete them afterwards (no wait)."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    created: list[str] = []
    base = "".join(c if c.isalnum() else "-" for c in request.node.name.lower())[:40].strip("-")

    def make() -> str:
        name = f"{base}-{uuid.uuid4().hex[:6]}"
        core.create_namespace(client.V1Namespace(metadata=client.V1ObjectMeta(name=name)))
        created.append(name)
        # The ServiceAccount admission plugin refuses pods until the
        # serviceaccount controller has created "default" in the namespace.
        wait_for(lambda: core.read_namespaced_service_account("default", name),
                 f"ServiceAccount {name}/default", 30)
        return name

    yield make
    for name in created:
        fake_kubelet.retire_namespace(api_client, name)


@pytest.fixture
def namespace(new_namespace) -> str:
    return new_namespace()


@pytest.fixture(scope="session")
def kueue(control_plane, pytestconfig):
    """Kueue's controller manager, running against the session's control plane until the session ends."""
    dist = pytestconfig.stash.get(KUEUE_DIST, None)
    if dist is None:  # the collection hook did not see the test (e.g. a fixture asked for it late)
        try:
            dist = kueue_build.build()
        except kueue_build.KueueBuildFailed as exc:
            dist = exc
    if isinstance(dist, Exception):
        pytest.fail(f"Kueue could not be built:\n{dist}", pytrace=False)
    manager = kueue_build.Kueue(control_plane, dist=dist, start_timeout=START_TIMEOUT)
    try:
        manager.start()
    except ComponentError as exc:
        pytest.fail(f"Kueue failed to start:\n{exc}", pytrace=False)
    print(f"\nkueue ready in {manager.start_seconds:.1f}s (webhooks at {manager.webhook_url})")
    try:
        yield manager
    finally:
        manager.stop()


REAL_NODE_TAINT = {"key": "headstart.dev/real-node", "value": "true", "effect": "NoSchedule"}
#: What a pod spec needs to run on the real node: select it and tolerate its taint.
ON_REAL_NODE = {
    "nodeSelector": {"headstart.dev/real-node": "true"},
    "tolerations": [{"key": REAL_NODE_TAINT["key"], "operator": "Equal", "value": REAL_NODE_TAINT["value"],
                     "effect": REAL_NODE_TAINT["effect"]}],
}


@pytest.fixture(scope="session")
def node(control_plane):
    keep = bool(os.environ.get("HEADSTART_CP_KEEP"))
    real = Node(control_plane, taints=[REAL_NODE_TAINT], start_timeout=START_TIMEOUT, keep_workdir=keep)
    try:
        real.start()
    except (ComponentError, binaries.BinariesMissing, images.ImageBuildFailed) as exc:
        pytest.fail(f"node failed to start:\n{exc}", pytrace=False)
    print(f"\nnode {real.name} ready in {real.start_seconds:.1f}s" + (f" (kept: {real.workdir})" if keep else ""))
    try:
        yield real
    finally:
        real.stop()
        print(f"\nnode {real.name} stopped in {real.stop_seconds:.1f}s")


@pytest.fixture(scope="session")
def node_image(node):
    """node_image(kind) -> ref: build (or reuse) the image, import it into the node once per session."""
    loaded: dict[str, str] = {}

    def load(kind: str) -> str:
        if kind not in loaded:
            try:
                ref, archive = images.build(kind)
            except images.ImageBuildFailed as exc:
                pytest.fail(f"image {kind} could not be built:\n{exc}", pytrace=False)
            node.load_image(archive, ref=ref, tags=images.DEFAULT_TAGS.get(kind, ()))
            loaded[kind] = ref
        return loaded[kind]

    return load


@pytest.fixture
def host_path_volume(api_client, tmp_path_factory):
    """host_path_volume(size="1Gi", uid=1000) -> (PV name, directory): a hostPath PersistentVolume.

    No storage class: a claim without one binds to it through the persistent-volume binder."""
    from kubernetes import client

    core = client.CoreV1Api(api_client)
    made: list[str] = []

    def make(size: str = "1Gi", uid: int = 1000) -> tuple[str, Path]:
        directory = tmp_path_factory.mktemp("pv")
        os.chown(directory, uid, uid)
        name = f"hostpath-{uuid.uuid4().hex[:8]}"
        core.create_persistent_volume(client.V1PersistentVolume(
            metadata=client.V1ObjectMeta(name=name),
            spec=client.V1PersistentVolumeSpec(
                capacity={"storage": size}, access_modes=["ReadWriteOnce"], storage_class_name="",
                persistent_volume_reclaim_policy="Retain",
                host_path=client.V1HostPathVolumeSource(path=str(directory), type="Directory")),
        ))
        made.append(name)
        return name, directory

    yield make
    for name in made:
        try:
            core.delete_persistent_volume(name)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
