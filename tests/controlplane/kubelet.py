"""What a kubelet would do, done through the API: register GPU nodes, report pod status.

There is no kubelet in the test control plane.  Nodes are plain Node objects
the scheduler can bind pods to; a test moves a bound pod through its phases
with :func:`set_pod_phase`, the same status writes a kubelet makes, and
:class:`Heartbeats` renews their Leases as a kubelet does, so the node
lifecycle controller keeps them Ready.
"""

from __future__ import annotations

import datetime
import threading
import time

from kubernetes import client

from .waiting import WaitTimeout, wait_for

GPU_RESOURCE = "nvidia.com/gpu"
NODE_LABELS = {"headstart.dev/fake-node": "true", "nvidia.com/gpu.present": "true"}
TERMINAL = ("Succeeded", "Failed")
# kubernetes-client >= 35 sends PATCH bodies as JSON Patch unless told otherwise.
STRATEGIC = "application/strategic-merge-patch+json"


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(microsecond=0)


def _ready_condition() -> dict:
    """A fake node's Ready condition, as its kubelet would report it now."""
    now = _now().isoformat()
    return {"type": "Ready", "status": "True", "reason": "KubeletReady",
            "message": "fake node for the headstart test control plane",
            "lastHeartbeatTime": now, "lastTransitionTime": now}


def create_gpu_nodes(
    api: client.ApiClient, count: int, gpus: int, deadline: float, prefix: str = "gpu-node"
) -> list[str]:
    """Create `count` Ready nodes with `gpus` x nvidia.com/gpu each; return their names."""
    core = client.CoreV1Api(api)
    names = []
    capacity = {"cpu": "32", "memory": "256Gi", "pods": "110", GPU_RESOURCE: str(gpus)}
    for i in range(count):
        name = f"{prefix}-{i}"
        core.create_node(client.V1Node(
            metadata=client.V1ObjectMeta(
                name=name, labels={**NODE_LABELS, "kubernetes.io/hostname": name}),
        ))
        # The TaintNodesByCondition admission plugin marks new nodes not-ready;
        # the node lifecycle controller would lift that once the kubelet reports
        # Ready.  Neither exists here, so report Ready and lift it ourselves.
        core.patch_node_status(name, {"status": {
            "capacity": capacity,
            "allocatable": capacity,
            "conditions": [_ready_condition()],
            "nodeInfo": {
                "kubeletVersion": "fake", "containerRuntimeVersion": "fake://0",
                "architecture": "amd64", "operatingSystem": "linux",
                "kernelVersion": "", "osImage": "", "kubeProxyVersion": "",
                "machineID": "", "systemUUID": "", "bootID": "",
            },
        }}, _content_type=STRATEGIC)
        core.patch_node(name, {"spec": {"taints": None}}, _content_type=STRATEGIC)
        names.append(name)
    timeout = max(deadline - time.monotonic(), 1.0)
    for name in names:
        wait_for(lambda n=name: not core.read_node(n).spec.taints,
                 f"node {name} to be untainted", timeout)
    return names


class Heartbeats:
    """Renew each fake node's Lease in kube-node-lease every `interval` seconds, in a thread."""

    LEASE_SECONDS = 40

    def __init__(self, api_factory, names: list[str], interval: float = 10.0) -> None:
        self._api = api_factory()
        self._leases = client.CoordinationV1Api(self._api)
        self._names = list(names)
        self._interval = interval
        self._stop = threading.Event()
        self.beat()  # the first renewal happens before the controller's first look
        self._thread = threading.Thread(target=self._run, name="fake-node-heartbeats", daemon=True)
        self._thread.start()

    def beat(self) -> None:
        now = datetime.datetime.now(datetime.timezone.utc)
        for name in self._names:
            body = {"spec": {"holderIdentity": name, "leaseDurationSeconds": self.LEASE_SECONDS,
                             "renewTime": now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}}
            try:
                self._leases.patch_namespaced_lease(name, "kube-node-lease", body, _content_type=STRATEGIC)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise
                self._leases.create_namespaced_lease("kube-node-lease", {
                    "metadata": {"name": name}, **body})

    def report_ready(self) -> None:
        """Each fake node Ready again if it is not, as its kubelet would report once it reaches the API server
        again: the node lifecycle controller marks a node Unknown when it has seen no heartbeat for its grace
        period (an API server that was away), and never marks it Ready itself."""
        core = client.CoreV1Api(self._api)
        for name in self._names:
            node = core.read_node(name)
            ready = next((c for c in node.status.conditions or [] if c.type == "Ready"), None)
            if ready is not None and ready.status == "True":
                continue
            core.patch_node_status(name, {"status": {"conditions": [_ready_condition()]}}, _content_type=STRATEGIC)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self.beat()
                self.report_ready()
                reap_retired(self._api, self._names)
            except Exception:  # noqa: BLE001 - the API may be going away; the next beat retries
                continue

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self._api.close()


def _container_statuses(pod: client.V1Pod, phase: str, exit_code: int) -> list[dict]:
    statuses = []
    for container in pod.spec.containers:
        if phase == "Running":
            state = {"running": {"startedAt": _now().isoformat()}}
        else:
            state = {"terminated": {
                "exitCode": exit_code,
                "reason": "Completed" if exit_code == 0 else "Error",
                "startedAt": _now().isoformat(),
                "finishedAt": _now().isoformat(),
            }}
        statuses.append({
            "name": container.name,
            "image": container.image,
            "imageID": "",
            "ready": phase == "Running",
            "restartCount": 0,
            "started": phase == "Running",
            "state": state,
        })
    return statuses


def set_pod_phase(
    api: client.ApiClient, namespace: str, name: str, phase: str, exit_code: int | None = None
) -> client.V1Pod:
    """Write pod status as a kubelet would: phase, conditions and container states.

    `phase` is Running, Succeeded or Failed.  The pod must already be bound to
    a node (a kubelet only reports pods it runs).
    """
    if phase not in ("Running", *TERMINAL):
        raise ValueError(f"unsupported phase {phase!r}")
    if exit_code is None:
        exit_code = 1 if phase == "Failed" else 0
    core = client.CoreV1Api(api)
    pod = core.read_namespaced_pod(name, namespace)
    if not pod.spec.node_name:
        raise AssertionError(f"pod {namespace}/{name} is not scheduled; a kubelet would not run it")
    ready = "True" if phase == "Running" else "False"
    now = _now().isoformat()
    status = {
        "phase": phase,
        "hostIP": "127.0.0.1",
        "podIP": "127.0.0.1",
        "startTime": now,
        "conditions": [
            {"type": "PodScheduled", "status": "True", "lastTransitionTime": now},
            {"type": "Initialized", "status": "True", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": ready, "lastTransitionTime": now},
            {"type": "Ready", "status": ready, "lastTransitionTime": now},
        ],
        "containerStatuses": _container_statuses(pod, phase, exit_code),
    }
    return core.patch_namespaced_pod_status(
        name, namespace, {"status": status}, _content_type=STRATEGIC)


def wait_scheduled(
    api: client.ApiClient, namespace: str, name: str, timeout: float = 60.0
) -> str:
    """Wait until the scheduler binds the pod; return the node name."""
    core = client.CoreV1Api(api)
    try:
        return wait_for(lambda: core.read_namespaced_pod(name, namespace).spec.node_name,
                        f"pod {namespace}/{name} to be scheduled", timeout)
    except WaitTimeout as exc:  # say why: the scheduler's verdict and who holds the GPUs
        conds = core.read_namespaced_pod(name, namespace).status.conditions or []
        why = next((c.message for c in conds if c.type == "PodScheduled"), None)
        raise WaitTimeout(f"{exc}; scheduler: {why}; GPUs held by: {gpu_holders(api)}") from None


def reap_pods(api: client.ApiClient, namespace: str) -> None:
    """Finish deleting the namespace's pods, as their kubelet would.

    A pod bound to a node is deleted gracefully: it stays Terminating (and keeps
    its GPUs on the node) until the kubelet confirms.  There is no kubelet, so
    confirm by deleting with a grace period of zero.
    """
    client.CoreV1Api(api).delete_collection_namespaced_pod(namespace, grace_period_seconds=0)


def reap_retired(api: client.ApiClient, nodes: list[str]) -> list[str]:
    """Force-delete the pods on fake ``nodes`` of every Terminating namespace, as their kubelet would once the
    namespace controller deleted them; return them (namespace/name).

    retire_namespace reaps a namespace's pods once, but a pod can still appear after that (a Job controller's
    create already in flight), and a Job's pod keeps the Job controller's tracking finalizer, which a Job
    with a podFailurePolicy removes only once the pod is terminal: no kubelet ever makes it so. Without this
    such a pod would hold its GPUs until the session ends."""
    core = client.CoreV1Api(api)
    return [reaped for ns in core.list_namespace().items
            if (ns.status.phase if ns.status else None) == "Terminating"
            for reaped in _reap_namespace(core, ns.metadata.name, set(nodes))]


def _reap_namespace(core: client.CoreV1Api, namespace: str, nodes: set[str]) -> list[str]:
    """Reap (``_reap``) the namespace's pods bound to ``nodes``; return them (namespace/name)."""
    reaped = []
    for pod in core.list_namespaced_pod(namespace).items:
        if pod.spec.node_name in nodes:
            _reap(core, pod)
            reaped.append(f"{namespace}/{pod.metadata.name}")
    return reaped


def _reap(core: client.CoreV1Api, pod: client.V1Pod) -> None:
    """What a kubelet ends with for a deleted pod, and the Job controller's finalizer let go of."""
    name, namespace = pod.metadata.name, pod.metadata.namespace
    try:
        if pod.metadata.finalizers:
            core.patch_namespaced_pod(name, namespace, {"metadata": {"finalizers": None}},
                                      _content_type="application/merge-patch+json")
        core.delete_namespaced_pod(name, namespace, grace_period_seconds=0)
    except client.ApiException as exc:
        if exc.status != 404:
            raise


def gpu_holders(api: client.ApiClient) -> list[str]:
    """Every pod bound to a node that requests GPUs: namespace/name, node, count, phase (and Terminating)."""
    held = []
    for pod in client.CoreV1Api(api).list_pod_for_all_namespaces().items:
        count = sum(int(((c.resources.requests or {}) if c.resources else {}).get(GPU_RESOURCE, 0))
                    for c in pod.spec.containers)
        if count and pod.spec.node_name:
            gone = " Terminating" if pod.metadata.deletion_timestamp else ""
            held.append(f"{pod.metadata.namespace}/{pod.metadata.name} on {pod.spec.node_name}: {count} "
                        f"({pod.status.phase}{gone})")
    return held


def retire_namespace(api: client.ApiClient, namespace: str) -> None:
    """Delete a namespace the way a test fixture should: Terminating first, so no
    new pods appear, then reap its pods so their GPUs are free at once."""
    core = client.CoreV1Api(api)
    try:
        core.delete_namespace(namespace)
        reap_pods(api, namespace)
        fake = ",".join(f"{k}={v}" for k, v in NODE_LABELS.items())
        nodes = {n.metadata.name for n in core.list_node(label_selector=fake).items}
        _reap_namespace(core, namespace, nodes)  # those a finalizer still holds (see reap_retired)
    except client.ApiException as exc:
        if exc.status != 404:
            raise
