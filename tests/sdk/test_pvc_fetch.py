"""The fetch helper pod runs the job's image as the job's pod runs it, and says in one line why it cannot start
(the fetch through deploy/'s operator, on the real node, is in tests/cluster/test_deploy_story.py)."""

from __future__ import annotations

from kubernetes import client

from headstart.api import FineTuneJob
from headstart.sdk.pvc_fetch import Runs, helper_pod, runs_of, why_not_started

JOB = FineTuneJob.model_validate({
    "apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": "digits"},
    "spec": {"baseModel": {"application": "MobileNetV2", "weights": "none"},
             "dataset": {"imageFolder": {"uri": "pvc://work/data"}},
             "stages": [{"name": "head", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}}],
             "output": {"uri": "pvc://work/models/digits"},
             "scheduling": {"nodeSelector": {"pool": "gpu"}}}})


def template(policy: str | None, secrets: tuple[str, ...] = (), user: int | None = 1000) -> client.V1PodSpec:
    return client.V1PodSpec(
        containers=[client.V1Container(name="trainer", image="headstart-trainer:latest", image_pull_policy=policy)],
        image_pull_secrets=[client.V1LocalObjectReference(name=s) for s in secrets] or None,
        security_context=client.V1PodSecurityContext(run_as_user=user, run_as_group=user))


def test_the_helper_pulls_the_image_as_the_jobs_pod_does():
    runs = runs_of(template("IfNotPresent", ("registry-key",), user=2000))
    assert runs == Runs("headstart-trainer:latest", "IfNotPresent", ("registry-key",), 2000, 2000)
    pod = helper_pod(JOB, "uid-1", "work", runs, "digits-fetch-abc")
    container = pod["spec"]["containers"][0]
    # a :latest tag without a policy would be pulled Always, from a registry an offline cluster has not
    assert (container["image"], container["imagePullPolicy"]) == ("headstart-trainer:latest", "IfNotPresent")
    assert pod["spec"]["imagePullSecrets"] == [{"name": "registry-key"}]
    assert (pod["spec"]["securityContext"]["runAsUser"], pod["spec"]["securityContext"]["runAsGroup"]) == (2000, 2000)
    assert pod["spec"]["nodeSelector"] == {"pool": "gpu"}
    assert pod["spec"]["volumes"][0]["persistentVolumeClaim"] == {"claimName": "work", "readOnly": True}
    assert runs_of(template(None, user=None)) == Runs("headstart-trainer:latest")  # defaults: IfNotPresent, 1000
    assert "imagePullSecrets" not in helper_pod(JOB, "uid-1", "work", Runs("img:1"), "x")["spec"]


def pod(phase="Pending", waiting=None, scheduled=None) -> client.V1Pod:
    statuses = None
    if waiting:
        statuses = [client.V1ContainerStatus(name="fetch", image="i", image_id="", ready=False, restart_count=0,
                                             state=client.V1ContainerState(waiting=client.V1ContainerStateWaiting(
                                                 reason=waiting[0], message=waiting[1])))]
    conditions = None
    if scheduled:
        conditions = [client.V1PodCondition(type="PodScheduled", status="False", reason="Unschedulable",
                                            message=scheduled)]
    return client.V1Pod(status=client.V1PodStatus(phase=phase, container_statuses=statuses, conditions=conditions))


def test_why_a_helper_pod_does_not_start_is_one_line():
    pulled = why_not_started(pod(waiting=("ErrImagePull", "failed to pull\n  image: not found")))
    assert pulled == ("ErrImagePull: failed to pull image: not found", True)
    missing = why_not_started(pod(scheduled='0/2 nodes are available: persistentvolumeclaim "work" not found.'))
    assert missing == ('Unschedulable: 0/2 nodes are available: persistentvolumeclaim "work" not found.', True)
    busy = why_not_started(pod(scheduled="0/2 nodes are available: 2 Insufficient memory."))
    assert busy == ("Unschedulable: 0/2 nodes are available: 2 Insufficient memory.", False)  # may free up
    assert why_not_started(pod()) == ("phase Pending", False)
