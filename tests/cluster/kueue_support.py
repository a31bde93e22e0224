"""Helpers of the Kueue stories (tests/cluster/test_kueue_*.py): quota in a ClusterQueue, a LocalQueue per
namespace, PriorityClasses, Kueue's Workloads as the admin sees them, and the operator restarted once after
Kueue's API exists (kopf discovers the resources it watches when it starts).

Pods run on the fake nodes: the `kubelet` fixture moves them through their phases, and confirms a deleted
pod's termination as a kubelet would (the pod of a Job that Kueue suspends is deleted gracefully)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import pytest
from controlplane.kubelet import STRATEGIC
from controlplane.waiting import wait_for
from kubernetes import client
from operator_support import Jobs, finish_pod, job_manifest
from typer.testing import CliRunner

from headstart.sdk.cli import app

KUEUE = ("kueue.x-k8s.io", "v1beta2")
FLAVOR = "headstart-default"


def _create(custom: client.CustomObjectsApi, plural: str, body: dict, namespace: str | None = None) -> None:
    try:
        if namespace:
            custom.create_namespaced_custom_object(*KUEUE, namespace, plural, body)
        else:
            custom.create_cluster_custom_object(*KUEUE, plural, body)
    except client.ApiException as exc:
        if exc.status != 409:
            raise


class Queues:
    """ClusterQueues made for one test (deleted after it) and LocalQueues in its namespace."""

    def __init__(self, api: client.ApiClient, namespace: str) -> None:
        self.custom = client.CustomObjectsApi(api)
        self.ns = namespace
        self.made: list[str] = []
        _create(self.custom, "resourceflavors", {"apiVersion": "/".join(KUEUE), "kind": "ResourceFlavor",
                                                 "metadata": {"name": FLAVOR}})

    def cluster_queue(self, gpus: int, cpu: str, preempt: bool = False) -> str:
        """A ClusterQueue for this test's namespace with quota for cpu and nvidia.com/gpu (and preemption of
        lower priorities inside it when asked)."""
        name = f"cq-{uuid.uuid4().hex[:6]}"
        quota = [{"name": "cpu", "nominalQuota": cpu}, {"name": "nvidia.com/gpu", "nominalQuota": str(gpus)}]
        spec: dict[str, Any] = {
            "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": self.ns}},
            "resourceGroups": [{"coveredResources": ["cpu", "nvidia.com/gpu"],
                                "flavors": [{"name": FLAVOR, "resources": quota}]}]}
        if preempt:
            spec["preemption"] = {"withinClusterQueue": "LowerPriority"}
        _create(self.custom, "clusterqueues", {"apiVersion": "/".join(KUEUE), "kind": "ClusterQueue",
                                               "metadata": {"name": name}, "spec": spec})
        self.made.append(name)
        wait_for(lambda: any(c["type"] == "Active" and c["status"] == "True" for c in
                             (self.custom.get_cluster_custom_object(*KUEUE, "clusterqueues", name).get("status")
                              or {}).get("conditions") or []), f"ClusterQueue {name} active", 30)
        return name

    def local_queue(self, name: str, cluster_queue: str) -> str:
        _create(self.custom, "localqueues", {"apiVersion": "/".join(KUEUE), "kind": "LocalQueue",
                                             "metadata": {"name": name, "namespace": self.ns},
                                             "spec": {"clusterQueue": cluster_queue}}, self.ns)
        return name

    def workload_of(self, job: str) -> dict | None:
        """The Workload Kueue made for the training Job ``job`` (owned by it), or None."""
        for wl in self.custom.list_namespaced_custom_object(*KUEUE, self.ns, "workloads")["items"]:
            owners = wl["metadata"].get("ownerReferences") or []
            if any(o.get("kind") == "Job" and o.get("name") == job for o in owners):
                return wl
        return None

    def admitted(self) -> list[str]:
        """Jobs whose Workload holds quota now (QuotaReserved and not finished)."""
        out = []
        for wl in self.custom.list_namespaced_custom_object(*KUEUE, self.ns, "workloads")["items"]:
            conds = {c["type"]: c["status"] for c in (wl.get("status") or {}).get("conditions") or []}
            if conds.get("QuotaReserved") == "True" and conds.get("Finished") != "True":
                out += [o["name"] for o in wl["metadata"].get("ownerReferences") or [] if o.get("kind") == "Job"]
        return out

    def cleanup(self) -> None:
        for name in self.made:
            try:
                self.custom.delete_cluster_custom_object(*KUEUE, "clusterqueues", name)
            except client.ApiException as exc:
                if exc.status != 404:
                    raise


@pytest.fixture(scope="session")
def queued_operator(kueue, operator):
    """The operator, started (again) once Kueue's CRDs exist, so that it watches Workloads and LocalQueues."""
    operator.stop()
    operator.start()
    return operator


@pytest.fixture
def queues(kueue, api_client, namespace):
    made = Queues(api_client, namespace)
    yield made
    made.cleanup()


@pytest.fixture
def queued_jobs(queued_operator, api_client, namespace) -> Jobs:
    return Jobs(api_client, namespace)


@pytest.fixture
def why_of(kubeconfig, namespace):
    """`headstart why NAME` in this namespace: its output."""
    def run(name: str) -> str:
        result = CliRunner().invoke(app, ["why", name, "--kubeconfig", str(kubeconfig), "-n", namespace])
        assert result.exit_code == 0, result.output
        return result.stdout
    return run


def queued(name: str, queue: str, gpus: int = 1, cpu: str = "1", **spec: Any) -> dict[str, Any]:
    scheduling = {"queueName": queue, **spec.pop("scheduling", {})}
    return job_manifest(name, resources={"gpus": gpus, "cpu": cpu}, scheduling=scheduling, **spec)


def run_pod(jobs: Jobs, kubelet, name: str, timeout: float = 60.0) -> str:
    """The live pod of ``name`` scheduled and Running (as its kubelet would report it); its name."""
    pod = jobs.live_pod(name, timeout=timeout)
    kubelet.wait_scheduled(jobs.ns, pod.metadata.name)
    kubelet.set_phase(jobs.ns, pod.metadata.name, "Running")
    return pod.metadata.name


def finish(jobs: Jobs, api_client: client.ApiClient, name: str) -> None:
    """The trainer of ``name`` ends well (its model in the termination message); the job Succeeded."""
    model = {"uri": f"s3://models/{name}", "sha256": "a" * 64, "formats": ["keras"], "classNames": ["a", "b"]}
    finish_pod(api_client, jobs.ns, jobs.live_pod(name).metadata.name, 0, message=json.dumps({"model": model}))
    jobs.wait_phase(name, "Succeeded", timeout=60)


def confirm_deleted_pods(jobs: Jobs, name: str, exit_code: int = 143, timeout: float = 60.0) -> None:
    """The kubelet's part when the Job controller deletes the pod of a suspended Job: the container stopped on
    SIGTERM (143), the pod Failed, then gone. Waits for the deletion first, and for the pods to be gone."""
    deleted = wait_for(lambda: [p for p in jobs.pods(name) if p.metadata.deletion_timestamp],
                       f"the pod of {name} deleted by the Job controller", timeout)
    for pod in deleted:
        now = pod.metadata.deletion_timestamp.isoformat()
        terminated = {"exitCode": exit_code, "reason": "Error", "startedAt": now, "finishedAt": now}
        status = {"phase": "Failed", "containerStatuses": [
            {"name": c.name, "image": c.image, "imageID": "", "ready": False, "restartCount": 0,
             "state": {"terminated": terminated}} for c in pod.spec.containers]}
        try:
            jobs.core.patch_namespaced_pod_status(pod.metadata.name, jobs.ns, {"status": status},
                                                  _content_type=STRATEGIC)
            jobs.core.delete_namespaced_pod(pod.metadata.name, jobs.ns, grace_period_seconds=0)
        except client.ApiException as exc:
            if exc.status != 404:
                raise
    wait_for(lambda: not jobs.pods(name), f"the pods of {name} gone", timeout)


def operator_wrote_suspend(job: client.V1Job) -> bool:
    """Whether the operator ever updated the Job's spec.suspend (its create aside): Kueue owns it."""
    return any(m.manager == "headstart-operator" and m.operation == "Update" and "f:suspend" in
               json.dumps(m.fields_v1 or {}) for m in job.metadata.managed_fields or [])


def priority_class(api: client.ApiClient, name: str, value: int) -> str:
    try:
        client.SchedulingV1Api(api).create_priority_class(client.V1PriorityClass(
            metadata=client.V1ObjectMeta(name=name), value=value, preemption_policy="Never",
            description="headstart Kueue tests"))
    except client.ApiException as exc:
        if exc.status != 409:
            raise
    return name
