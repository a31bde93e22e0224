"""Why a FineTuneJob waits or cannot run, said in its status: a spec the models refuse, an upstream job,
no GPU, no matching node, a quota, suspension by the user or by Kueue, a spec change while it runs."""

from __future__ import annotations

import json

import pytest
from controlplane.kubelet import reap_pods
from controlplane.waiting import wait_for
from kubernetes import client
from operator_support import finish_pod, job_manifest

from headstart.api import names


def nothing_created(api_client, namespace: str, name: str) -> None:
    selector = names.selector_for(name)
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    rbac = client.RbacAuthorizationV1Api(api_client)
    assert not batch.list_namespaced_job(namespace, label_selector=selector).items
    assert not core.list_namespaced_config_map(namespace, label_selector=selector).items
    assert not core.list_namespaced_service_account(namespace, label_selector=selector).items
    assert not rbac.list_namespaced_role(namespace, label_selector=selector).items


def test_a_spec_the_crd_admits_but_cannot_run_fails_with_nothing_created(jobs, api_client, namespace):
    # An image folder trains on what validation and test leave: a train split is refused by the models,
    # and the CRD cannot see it (a split is a string or a number).
    bad = job_manifest("bad", dataset={"imageFolder": {"uri": "pvc://data/photos"}, "splits": {"train": 0.5}})
    jobs.create(bad)
    failed = jobs.wait_phase("bad", "Failed", "InvalidSpec")
    assert "spec.dataset" in failed["message"] and "splits.train" in failed["message"]
    event = jobs.wait_event("bad", "InvalidSpec")
    assert event.type == "Warning"
    nothing_created(api_client, namespace, "bad")


def test_the_api_server_rejects_what_the_crd_forbids(jobs, api_client, namespace):
    doc = job_manifest("zero")
    doc["spec"]["stages"][0]["epochs"] = 0
    with pytest.raises(client.ApiException) as refused:
        jobs.create(doc)
    assert refused.value.status == 422 and "spec.stages[0].epochs" in refused.value.body
    nothing_created(api_client, namespace, "zero")


def test_from_job_waits_for_its_upstream_then_starts_with_its_model(jobs, api_client, kubelet, namespace):
    jobs.create(job_manifest("child", baseModel={"fromJob": "parent"}))  # GitOps: any order
    waiting = jobs.wait_phase("child", "Pending", "WaitingForUpstream")
    assert "'parent'" in waiting["message"] and "does not exist" in waiting["message"]
    nothing_created(api_client, namespace, "child")
    jobs.create(job_manifest("parent"))
    jobs.wait_status("child", "still waiting, now for a running parent",
                     lambda s: "it is" in (s.get("message") or ""))
    nothing_created(api_client, namespace, "child")
    pod = jobs.live_pod("parent")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    model = {"uri": "pvc://archive/parent-model", "sha256": "b" * 64, "formats": ["keras"], "classNames": ["a"]}
    finish_pod(api_client, namespace, pod.metadata.name, 0, json.dumps({"model": model}))
    jobs.wait_phase("parent", "Succeeded", timeout=60)
    child = jobs.training_job("child", timeout=60)
    args = child.spec.template.spec.containers[0].args
    assert args[-2:] == ["--from-job", "parent=pvc://archive/parent-model"]
    claims = {v.persistent_volume_claim.claim_name for v in child.spec.template.spec.volumes
              if v.persistent_volume_claim}
    assert "archive" in claims  # the upstream's model is mounted too


def test_from_job_naming_a_failed_job_fails_with_nothing_created(jobs, api_client, namespace):
    jobs.create(job_manifest("broken", dataset={"imageFolder": {"uri": "pvc://data/x"}, "splits": {"train": 0.1}}))
    jobs.wait_phase("broken", "Failed", "InvalidSpec")
    jobs.create(job_manifest("after", baseModel={"fromJob": "broken"}))
    failed = jobs.wait_phase("after", "Failed", "UpstreamFailed")
    assert "'broken'" in failed["message"]
    assert jobs.wait_event("after", "UpstreamFailed").type == "Warning"
    nothing_created(api_client, namespace, "after")


@pytest.mark.parametrize("changes, reason, words", [
    ({"resources": {"gpus": 16}}, "InsufficientGPU", "Insufficient nvidia.com/gpu"),
    ({"scheduling": {"nodeSelector": {"gpu-model": "h100"}}}, "NoMatchingNode", "node affinity/selector"),
])
def test_unschedulable_is_explained(jobs, changes, reason, words):
    jobs.create(job_manifest("stuck", **changes))
    status = jobs.wait_phase("stuck", "Pending", reason, timeout=60)
    assert words in status["message"]
    assert jobs.condition("stuck", "Running")["reason"] == reason


def test_quota_exceeded_is_explained(jobs, api_client, namespace):
    client.CoreV1Api(api_client).create_namespaced_resource_quota(namespace, {
        "metadata": {"name": "no-gpus"}, "spec": {"hard": {"requests.nvidia.com/gpu": "0"}}})
    wait_for(lambda: (client.CoreV1Api(api_client).read_namespaced_resource_quota("no-gpus", namespace)
                      .status.hard), "the quota to be counted", 30)
    jobs.create(job_manifest("greedy", resources={"gpus": 1}))
    status = jobs.wait_phase("greedy", "Pending", "QuotaExceeded", timeout=60)
    assert "exceeded quota" in status["message"]


def test_suspend_and_resume(jobs, api_client, kubelet, namespace):
    created = jobs.create(job_manifest("pause"))
    pod = jobs.live_pod("pause")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Running")
    jobs.wait_phase("pause", "Running")
    spec_hash = jobs.training_job("pause").metadata.annotations[names.ANNOTATION_SPEC_HASH]
    jobs.patch_spec("pause", {"runPolicy": {"suspend": True}})
    batch = client.BatchV1Api(api_client)
    wait_for(lambda: batch.read_namespaced_job("pause", namespace).spec.suspend, "the Job suspended", 30)
    reap_pods(api_client, namespace)  # the kubelet would stop the pod
    suspended = jobs.wait_phase("pause", "Suspended")
    assert jobs.condition("pause", "Suspended")["status"] == "True"
    assert suspended["observedGeneration"] == created["metadata"]["generation"] + 1
    jobs.patch_spec("pause", {"runPolicy": {"suspend": False}})
    again = jobs.live_pod("pause", timeout=60)
    assert again.metadata.name != pod.metadata.name
    kubelet.wait_scheduled(namespace, again.metadata.name)
    kubelet.set_phase(namespace, again.metadata.name, "Running")
    jobs.wait_phase("pause", "Running")
    job = jobs.training_job("pause")
    assert job.metadata.annotations[names.ANNOTATION_SPEC_HASH] == spec_hash  # the same Job, resumed
    assert jobs.condition("pause", "Stalled")["status"] == "False"


def test_a_queued_job_is_created_suspended_and_is_queued_not_failed(jobs):
    jobs.create(job_manifest("queued", scheduling={"queueName": "team-a"}))
    job = jobs.training_job("queued")
    assert job.metadata.labels[names.LABEL_KUEUE_QUEUE] == "team-a"
    assert job.spec.suspend is True  # Kueue unsuspends it when its ClusterQueue admits it; the field is Kueue's
    # Without Kueue in the session nothing admits it; with Kueue (tests/cluster/test_kueue_*.py) there is no
    # LocalQueue team-a in this namespace.
    status = jobs.wait_status("queued", "queued", lambda s: s.get("phase") == "Pending" and s.get("reason") in (
        "QueuedByKueue", "MissingLocalQueue"))
    assert "team-a" in status["message"]
    assert not jobs.pods("queued")
    assert jobs.condition("queued", "Suspended")["status"] == "True"
    assert jobs.condition("queued", "Failed")["status"] == "False"
    assert jobs.condition("queued", "Stalled")["status"] == "False"


def test_a_spec_change_to_a_running_job_is_refused(jobs, api_client, kubelet, namespace):
    jobs.create(job_manifest("fixed"))
    pod = jobs.live_pod("fixed")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Running")
    jobs.wait_phase("fixed", "Running")
    before = jobs.training_job("fixed")
    changed = jobs.patch_spec("fixed", {"stages": [{"name": "head", "trainBase": "none", "epochs": 9,
                                                     "optimizer": {"type": "Adam", "learningRate": 0.001}}]})
    status = jobs.wait_status("fixed", "the change refused", lambda s: any(
        c["type"] == "Stalled" and c["reason"] == "SpecChangeRefused" and c["status"] == "True"
        for c in s.get("conditions") or []))
    assert status["phase"] == "Running"
    assert status["observedGeneration"] == changed["metadata"]["generation"]
    assert jobs.wait_event("fixed", "SpecChangeRefused").type == "Warning"
    after = jobs.training_job("fixed")
    assert after.metadata.annotations == before.metadata.annotations
    assert after.spec.template.spec.containers[0].args == before.spec.template.spec.containers[0].args
    assert jobs.get("fixed")["spec"]["stages"][0]["epochs"] == 9  # the user's spec is left as written


def test_a_second_job_on_an_output_waits_until_the_first_ends(jobs, api_client, kubelet, namespace, new_namespace):
    """Two jobs never write one output: the second (another namespace, the same bucket URI) waits, OutputInUse
    naming the first, and starts when the first ends; the same pvc:// URI in two namespaces is two claims."""
    import json

    from operator_support import Jobs, finish_pod

    shared = {"uri": "s3://models/shared"}
    jobs.create(job_manifest("first", output=shared))
    pod = jobs.live_pod("first")
    other = Jobs(api_client, new_namespace())
    other.create(job_manifest("second", output=shared))
    waiting = other.wait_phase("second", "Pending", "OutputInUse")
    assert f"written by FineTuneJob {namespace}/first" in waiting["message"]
    assert not other.batch.list_namespaced_job(other.ns).items  # nothing created meanwhile
    claims = Jobs(api_client, new_namespace())
    claims.create(job_manifest("mine", output={"uri": "pvc://models/x"}))
    jobs.create(job_manifest("theirs", output={"uri": "pvc://models/x"}))
    claims.training_job("mine")
    jobs.training_job("theirs")  # another namespace's claim of the same name: both run
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    model = {"uri": "s3://models/shared", "sha256": "c" * 64, "formats": ["keras"], "classNames": ["a", "b"]}
    finish_pod(api_client, namespace, pod.metadata.name, 0, json.dumps({"model": model}))
    jobs.wait_phase("first", "Succeeded", timeout=60)
    other.training_job("second", timeout=60)  # woken by the first's end, not by a resync
    other.wait_status("second", "its status past OutputInUse (written after its Job is created)",
                      lambda s: s.get("trainingJob") and s.get("reason") != "OutputInUse")
