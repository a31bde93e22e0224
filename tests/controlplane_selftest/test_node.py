"""The real node: pods run from locally built images, with logs, exec, tokens, volumes and GPUs.

Every pod here selects the real node and tolerates its taint (node_support.pod_manifest); images
come from tests/node/build-images.sh and are imported, never pulled (imagePullPolicy: Never).
"""

from __future__ import annotations

import json
import time

import pytest
from controlplane.waiting import wait_for
from kubernetes import client
from node_support import create_pod, logs, pod_manifest, wait_phase, wait_ready


@pytest.fixture(scope="module")
def base_image(node_image) -> str:
    return node_image("base")


def test_node_is_ready_with_gpus_and_its_own_identity(api_client, node):
    info = client.CoreV1Api(api_client).read_node(node.name)
    assert info.status.node_info.kubelet_version == "v1.36.3"
    assert info.status.node_info.container_runtime_version.startswith("containerd://1.")
    assert info.status.capacity["nvidia.com/gpu"] == str(node.gpus)
    assert info.status.allocatable["nvidia.com/gpu"] == str(node.gpus)
    assert {"type": "InternalIP", "address": node.ip} in [a.to_dict() for a in info.status.addresses]
    leases = client.CoordinationV1Api(api_client)
    lease = wait_for(lambda: leases.read_namespaced_lease(node.name, "kube-node-lease"),
                     "the kubelet's heartbeat Lease", 30)
    assert lease.spec.holder_identity == node.name


def test_pod_runs_from_a_local_image_and_its_logs_come_through_the_api(api_client, namespace, base_image, kubectl):
    name = create_pod(api_client, namespace, pod_manifest(
        base_image, ["python3", "-c", "import platform; print('hello from', platform.python_version())"]))
    began = time.monotonic()
    pod = wait_phase(api_client, namespace, name, ("Succeeded",))
    assert pod.status.container_statuses[0].state.terminated.exit_code == 0
    assert logs(api_client, namespace, name).startswith("hello from 3.11")
    out = kubectl("logs", "-n", namespace, name).stdout
    assert out.startswith("hello from 3.11"), out
    print(f"pod ran to completion {time.monotonic() - began:.1f}s after create")


def test_exec_and_the_service_account_token_reach_the_api_server_through_the_service(
        api_client, namespace, base_image, kubectl):
    name = create_pod(api_client, namespace, pod_manifest(base_image, ["sleep", "600"], restart="Always"))
    wait_ready(api_client, namespace, name)
    assert kubectl("exec", "-n", namespace, name, "--", "cat", "/etc/debian_version").stdout.startswith("12.")
    # In the pod: who am I, asked of the API server through the `kubernetes` Service with the
    # projected token and the CA the kubelet mounted.
    script = (
        "import json, os, ssl, urllib.request\n"
        "sa = '/var/run/secrets/kubernetes.io/serviceaccount'\n"
        "token = open(sa + '/token').read()\n"
        "url = 'https://%s:%s/apis/authentication.k8s.io/v1/selfsubjectreviews' % ("
        "os.environ['KUBERNETES_SERVICE_HOST'], os.environ['KUBERNETES_SERVICE_PORT'])\n"
        "req = urllib.request.Request(url, method='POST', data=json.dumps({'apiVersion': "
        "'authentication.k8s.io/v1', 'kind': 'SelfSubjectReview'}).encode(), headers={"
        "'Authorization': 'Bearer ' + token, 'Content-Type': 'application/json'})\n"
        "ctx = ssl.create_default_context(cafile=sa + '/ca.crt')\n"
        "print(json.load(urllib.request.urlopen(req, context=ctx, timeout=10))['status']['userInfo']['username'])\n"
    )
    out = kubectl("exec", "-n", namespace, name, "--", "python3", "-c", script).stdout.strip()
    assert out == f"system:serviceaccount:{namespace}:default"
    env = kubectl("exec", "-n", namespace, name, "--", "printenv", "KUBERNETES_SERVICE_HOST").stdout.strip()
    assert env == "10.0.0.1"


def test_host_path_and_a_persistent_volume_claim_bound_by_the_controller(
        api_client, namespace, base_image, host_path_volume, tmp_path):
    core = client.CoreV1Api(api_client)
    pv_name, pv_dir = host_path_volume("1Gi")
    core.create_namespaced_persistent_volume_claim(namespace, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name="data"),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], storage_class_name="",
            resources=client.V1VolumeResourceRequirements(requests={"storage": "1Gi"}))))
    claim = wait_for(lambda: (c := core.read_namespaced_persistent_volume_claim("data", namespace)).status.phase
                     == "Bound" and c, "claim data to be Bound", 60)
    assert claim.spec.volume_name == pv_name
    host_dir = tmp_path / "host"
    host_dir.mkdir()
    host_dir.chmod(0o777)
    name = create_pod(api_client, namespace, pod_manifest(
        base_image, ["sh", "-c", "echo claimed > /data/out.txt && echo host > /host/out.txt"],
        volumes=[{"name": "data", "persistentVolumeClaim": {"claimName": "data"}},
                 {"name": "host", "hostPath": {"path": str(host_dir), "type": "Directory"}}],
        mounts=[{"name": "data", "mountPath": "/data"}, {"name": "host", "mountPath": "/host"}]))
    wait_phase(api_client, namespace, name, ("Succeeded",))
    assert (pv_dir / "out.txt").read_text() == "claimed\n"
    assert (host_dir / "out.txt").read_text() == "host\n"
    assert (pv_dir / "out.txt").stat().st_uid == 1000


def test_gpu_requests_schedule_on_the_advertised_extended_resource(api_client, namespace, base_image, node):
    gpus = {"nvidia.com/gpu": "1"}
    name = create_pod(api_client, namespace, pod_manifest(
        base_image, ["true"], resources={"limits": gpus, "requests": gpus}))
    pod = wait_phase(api_client, namespace, name, ("Succeeded",))
    assert pod.spec.node_name == node.name
    too_many = {"nvidia.com/gpu": str(node.gpus + 1)}
    big = create_pod(api_client, namespace, pod_manifest(
        base_image, ["true"], resources={"limits": too_many, "requests": too_many}))
    core = client.CoreV1Api(api_client)

    def unschedulable():
        conditions = core.read_namespaced_pod(big, namespace).status.conditions or []
        return [c for c in conditions if c.type == "PodScheduled" and c.reason == "Unschedulable"]

    condition = wait_for(unschedulable, "the oversized GPU pod to be reported unschedulable", 60)[0]
    assert "nvidia.com/gpu" in condition.message


def test_node_credentials_are_limited_by_the_node_authorizer_and_node_restriction(node, bin_dir, control_plane):
    import subprocess

    env = {"KUBECONFIG": str(node.workdir / "kubelet.kubeconfig"), "PATH": "/usr/bin:/bin"}
    kubectl = str(bin_dir / "kubectl")

    def as_node(*args: str) -> subprocess.CompletedProcess:
        # kubelet.kubeconfig names the API server's address inside the node's namespace: run there
        return node.run(kubectl, f"--kubeconfig={env['KUBECONFIG']}", *args, check=False)

    assert as_node("get", "node", node.name, "-o", "name").stdout.strip() == f"node/{node.name}"
    denied = as_node("get", "secrets", "-n", "kube-system")
    assert denied.returncode != 0 and "forbidden" in denied.stderr.lower(), denied.stderr
    other = control_plane.node_names[0]
    patched = as_node("label", "node", other, "headstart.dev/touched=yes")
    assert patched.returncode != 0 and "forbidden" in patched.stderr.lower(), patched.stderr


def test_kubelet_api_refuses_anonymous_callers(node):
    script = (
        "import ssl, urllib.request, urllib.error\n"
        "ctx = ssl._create_unverified_context()\n"
        f"try: urllib.request.urlopen('https://{node.ip}:10250/pods', context=ctx, timeout=5)\n"
        "except urllib.error.HTTPError as e: print(e.code)\n"
    )
    assert node.run("python3", "-c", script).stdout.strip() == "401"


def test_pods_reach_each_other(api_client, namespace, base_image):
    server = pod_manifest(base_image, ["python3", "-m", "http.server", "8080", "--directory", "/etc"],
                          restart="Always")
    # Ready once it listens: the kubelet probes it from the node, over the pod network
    server["spec"]["containers"][0]["readinessProbe"] = {"tcpSocket": {"port": 8080}, "periodSeconds": 1}
    pod = wait_ready(api_client, namespace, create_pod(api_client, namespace, server))
    ip = pod.status.pod_ip
    assert ip.startswith("10.244.0."), pod.status
    script = f"import urllib.request; print(urllib.request.urlopen('http://{ip}:8080/debian_version').read().decode())"
    name = create_pod(api_client, namespace, pod_manifest(base_image, ["python3", "-c", script]))
    wait_phase(api_client, namespace, name, ("Succeeded",))
    assert logs(api_client, namespace, name).startswith("12.")


def test_every_other_destination_is_refused_at_once_and_counted(api_client, namespace, base_image, node):
    """RFC 5737 TEST-NET-1 addresses only: the firewall refuses them before any packet leaves."""
    before = node.firewall_counters()
    script = (
        "import json, socket, time\n"
        "out = {}\n"
        "for port in (443, 80):\n"
        "    began = time.monotonic()\n"
        "    try:\n"
        "        socket.create_connection(('192.0.2.1', port), timeout=20)\n"
        "        out[port] = 'connected'\n"
        "    except OSError as exc:\n"
        "        out[port] = [exc.errno, round(time.monotonic() - began, 3)]\n"
        "print(json.dumps(out))\n"
    )
    name = create_pod(api_client, namespace, pod_manifest(base_image, ["python3", "-c", script]))
    wait_phase(api_client, namespace, name, ("Succeeded",))
    result = json.loads(logs(api_client, namespace, name))
    for port, outcome in result.items():
        assert outcome != "connected", f"192.0.2.1:{port} was reachable"
        errno_, seconds = outcome
        assert errno_ == 111, f"port {port}: expected ECONNREFUSED from the firewall's reset, got {outcome}"
        assert seconds < 0.5, f"port {port}: refusal took {seconds}s, not at once"
    after = node.firewall_counters()
    assert after["refused-tcp"] >= before["refused-tcp"] + 2, (before, after)


def test_containerd_never_pulls_an_image_is_refused_not_fetched(api_client, namespace, node):
    """A missing image with IfNotPresent: containerd tries the (TEST-NET) registry and is refused at once."""
    before = node.firewall_counters()["refused-tcp"]
    manifest = pod_manifest("192.0.2.10:5000/headstart/absent:1", ["true"])
    manifest["spec"]["containers"][0]["imagePullPolicy"] = "IfNotPresent"
    name = create_pod(api_client, namespace, manifest)
    core = client.CoreV1Api(api_client)

    def pull_failed():
        statuses = core.read_namespaced_pod(name, namespace).status.container_statuses or []
        waiting = [s.state.waiting for s in statuses if s.state and s.state.waiting]
        return [w for w in waiting if w.reason in ("ErrImagePull", "ImagePullBackOff")]

    waiting = wait_for(pull_failed, "the pull of an absent image to fail", 60)[0]
    assert "connection refused" in (waiting.message or "").lower() or waiting.reason == "ImagePullBackOff"
    assert node.firewall_counters()["refused-tcp"] > before
