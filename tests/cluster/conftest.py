"""Fixtures for tests that need a real Kubernetes control plane.

control_plane  (session)  etcd + kube-apiserver + kube-controller-manager +
                          kube-scheduler, started once per pytest session
kubeconfig     (session)  path of the admin kubeconfig
api_client     (session)  kubernetes.client.ApiClient as cluster admin
bin_dir        (session)  directory holding kubectl and the other binaries
kubectl        (session)  run kubectl against the cluster: kubectl("get", "pods", ...)
kubelet        (session)  act as a kubelet: kubelet.set_phase(ns, pod, "Succeeded")
new_namespace  (function) factory for extra namespaces, deleted after the test
namespace      (function) a fresh namespace whose default ServiceAccount exists

A missing binary or a failed start fails the session; it is never a skip.
"""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # makes `controlplane` importable

from controlplane import binaries  # noqa: E402
from controlplane import kubelet as fake_kubelet  # noqa: E402
from controlplane.cluster import ControlPlane  # noqa: E402
from controlplane.processes import ComponentError  # noqa: E402
from controlplane.waiting import wait_for  # noqa: E402

START_TIMEOUT = float(os.environ.get("HEADSTART_CP_START_TIMEOUT", "180"))
HERE = Path(__file__).resolve().parent


def pytest_collection_modifyitems(config, items):
    for item in items:
        if HERE in Path(str(item.path)).resolve().parents:
            item.add_marker(pytest.mark.cluster)


@pytest.fixture(scope="session")
def control_plane():
    try:
        bins = binaries.resolve()
    except binaries.BinariesMissing as exc:
        pytest.fail(f"control-plane binaries unavailable: {exc}", pytrace=False)
    plane = ControlPlane(bins=bins, start_timeout=START_TIMEOUT)
    try:
        plane.start()
    except ComponentError as exc:
        pytest.fail(f"control plane failed to start:\n{exc}", pytrace=False)
    print(f"\ncontrol plane ready in {plane.start_seconds:.1f}s at {plane.server}")
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
