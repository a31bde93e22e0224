"""The test cluster's Kueue (tests/controlplane/kueue.py), without Headstart: its webhooks are called by the API
server (a Job with a queue-name label is suspended on create), its conversion webhook answers, and a plain Job
is queued, admitted, started and finished within a ClusterQueue's quota."""

from __future__ import annotations

import uuid

from controlplane.waiting import wait_for
from kubernetes import client

KUEUE = ("kueue.x-k8s.io", "v1beta2")


def plain_job(name: str, queue: str) -> client.V1Job:
    container = client.V1Container(name="c", image="pause", resources=client.V1ResourceRequirements(
        requests={"cpu": "1"}, limits={"cpu": "1"}))
    return client.V1Job(
        metadata=client.V1ObjectMeta(name=name, labels={"kueue.x-k8s.io/queue-name": queue}),
        spec=client.V1JobSpec(backoff_limit=0, template=client.V1PodTemplateSpec(
            spec=client.V1PodSpec(restart_policy="Never", containers=[container]))))


def test_a_queued_job_is_suspended_by_kueues_webhook_then_admitted_and_finished(kueue, api_client, kubelet,
                                                                               namespace):
    custom, batch, core = client.CustomObjectsApi(api_client), client.BatchV1Api(api_client), client.CoreV1Api(
        api_client)
    cq = f"selftest-{uuid.uuid4().hex[:6]}"
    custom.create_cluster_custom_object(*KUEUE, "resourceflavors", {
        "apiVersion": "/".join(KUEUE), "kind": "ResourceFlavor", "metadata": {"name": cq}})
    custom.create_cluster_custom_object(*KUEUE, "clusterqueues", {
        "apiVersion": "/".join(KUEUE), "kind": "ClusterQueue", "metadata": {"name": cq},
        "spec": {"namespaceSelector": {}, "resourceGroups": [{"coveredResources": ["cpu"], "flavors": [
            {"name": cq, "resources": [{"name": "cpu", "nominalQuota": "1"}]}]}]}})
    try:
        custom.create_namespaced_custom_object(*KUEUE, namespace, "localqueues", {
            "apiVersion": "/".join(KUEUE), "kind": "LocalQueue", "metadata": {"name": "lq"},
            "spec": {"clusterQueue": cq}})
        made = batch.create_namespaced_job(namespace, plain_job("first", "lq"))  # created unsuspended
        assert made.spec.suspend is True  # Kueue's mutating webhook, called by the API server
        batch.create_namespaced_job(namespace, plain_job("second", "lq"))

        def admitted() -> list[str]:
            """Jobs whose Workload is admitted and not finished."""
            out = []
            for wl in custom.list_namespaced_custom_object(*KUEUE, namespace, "workloads")["items"]:
                conds = {c["type"]: c["status"] for c in (wl.get("status") or {}).get("conditions") or []}
                if conds.get("Admitted") == "True" and conds.get("Finished") != "True":
                    out += [o["name"] for o in wl["metadata"]["ownerReferences"]]
            return sorted(out)

        # One fits the quota; which one is Kueue's order (created in the same second: by uid).
        first = wait_for(lambda: len(admitted()) == 1 and admitted()[0], "one Job admitted", 60)
        second = ({"first", "second"} - {first}).pop()
        wait_for(lambda: not batch.read_namespaced_job(first, namespace).spec.suspend, "Kueue starting it", 30)
        assert batch.read_namespaced_job(second, namespace).spec.suspend is True  # beyond the quota
        # The conversion webhook: the Workloads read in the other served version.
        old = custom.list_namespaced_custom_object("kueue.x-k8s.io", "v1beta1", namespace, "workloads")["items"]
        assert {wl["apiVersion"] for wl in old} == {"kueue.x-k8s.io/v1beta1"} and len(old) == 2

        pod = wait_for(lambda: core.list_namespaced_pod(namespace, label_selector=f"job-name={first}").items,
                       f"the pod of Job {first}", 30)[0]
        kubelet.wait_scheduled(namespace, pod.metadata.name)
        kubelet.set_phase(namespace, pod.metadata.name, "Succeeded", exit_code=0)
        wait_for(lambda: admitted() == [second], f"Job {second} admitted once {first} finished", 60)
        wait_for(lambda: not batch.read_namespaced_job(second, namespace).spec.suspend, "Kueue starting it", 30)
    finally:
        custom.delete_cluster_custom_object(*KUEUE, "clusterqueues", cq)
        custom.delete_cluster_custom_object(*KUEUE, "resourceflavors", cq)
