"""The control plane is the pinned release and its basic controllers work."""

from __future__ import annotations

import json

from controlplane import binaries
from controlplane.kubelet import GPU_RESOURCE
from controlplane.waiting import wait_for
from kubernetes import client


def test_version_is_the_pinned_release(api_client, kubectl):
    pin = binaries.pinned_version()
    info = client.VersionApi(api_client).get_code()
    assert info.git_version == pin
    assert f"{info.major}.{info.minor}" == ".".join(pin.lstrip("v").split(".")[:2])
    out = json.loads(kubectl("version", "-o", "json").stdout)
    assert out["clientVersion"]["gitVersion"] == pin
    assert out["serverVersion"]["gitVersion"] == pin


def test_fake_gpu_nodes_are_ready_and_untainted(api_client, control_plane):
    nodes = client.CoreV1Api(api_client).list_node(label_selector="headstart.dev/fake-node=true")
    assert sorted(n.metadata.name for n in nodes.items) == sorted(control_plane.node_names)
    for node in nodes.items:
        assert node.status.allocatable[GPU_RESOURCE] == str(control_plane.gpus_per_node)
        assert {c.type: c.status for c in node.status.conditions}["Ready"] == "True"
        assert not node.spec.taints


def test_namespace_gets_default_serviceaccount_and_root_ca(api_client, namespace):
    core = client.CoreV1Api(api_client)
    assert core.read_namespaced_service_account("default", namespace)
    cm = wait_for(lambda: core.read_namespaced_config_map("kube-root-ca.crt", namespace),
                  "kube-root-ca.crt ConfigMap", 30)
    assert "BEGIN CERTIFICATE" in cm.data["ca.crt"]


def test_namespace_controller_finalizes_deleted_namespace(api_client, new_namespace):
    core = client.CoreV1Api(api_client)
    name = new_namespace()
    core.create_namespaced_config_map(
        name, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="leftover")))
    core.delete_namespace(name)

    def gone() -> bool:
        try:
            core.read_namespace(name)
        except client.ApiException as exc:
            return exc.status == 404
        return False

    wait_for(gone, f"namespace {name} to be finalized and removed", 60)


def test_anonymous_requests_are_rejected(control_plane):
    import ssl
    import urllib.error
    import urllib.request

    ctx = ssl.create_default_context(cafile=str(control_plane.pki.ca.cert))
    try:
        urllib.request.urlopen(f"{control_plane.server}/api", context=ctx, timeout=10)
    except urllib.error.HTTPError as exc:
        assert exc.code == 401
    else:
        raise AssertionError("anonymous request to /api was accepted")
