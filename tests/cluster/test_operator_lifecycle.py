"""A FineTuneJob's life with the operator running under its own RBAC: children created and owned, the pod
driven through its phases as a kubelet would, status, conditions and events following."""

from __future__ import annotations

import json

from kubernetes import client
from operator_support import TRAINER_IMAGE, finish_pod, job_manifest

from headstart.api import names
from headstart.api.exitcodes import PERMANENT_EXIT_CODES, ExitCode


def restricted(api_client, namespace: str) -> None:
    """Pod Security "restricted" enforced in the namespace: a pod that breaks it is never created."""
    client.CoreV1Api(api_client).patch_namespace(namespace, {"metadata": {"labels": {
        "pod-security.kubernetes.io/enforce": "restricted", "pod-security.kubernetes.io/enforce-version": "latest"}}})


def test_create_gives_an_owned_job_with_the_expected_pod(jobs, api_client, namespace):
    restricted(api_client, namespace)
    created = jobs.create(job_manifest("flowers", resources={"gpus": 2, "cpu": "2", "memory": "4Gi"},
                                       scheduling={"nodeSelector": {"nvidia.com/gpu.present": "true"}},
                                       dataset={"imageFolder": {"uri": "pvc://data/photos"}},
                                       output={"uri": "pvc://models/flowers"}))
    uid = created["metadata"]["uid"]
    job = jobs.training_job("flowers")
    assert [(o.kind, o.name, o.uid, o.controller) for o in job.metadata.owner_references] == \
        [("FineTuneJob", "flowers", uid, True)]
    pod_spec = job.spec.template.spec
    c = pod_spec.containers[0]
    assert c.name == "trainer" and c.image == TRAINER_IMAGE
    assert c.command == ["python", "-m", "headstart.trainer"] and c.args == ["--job", names.JOB_FILE]
    assert c.resources.limits == {"nvidia.com/gpu": "2", "cpu": "2", "memory": "4Gi"}
    env = {e.name: e for e in c.env}
    assert env["HEADSTART_FINETUNEJOB_NAME"].value == "flowers"
    assert env["HEADSTART_PVC_ROOT"].value == names.PVC_ROOT
    assert env[names.ENV_PROGRESS_URL].value.endswith(f"/v1/namespaces/{namespace}/finetunejobs/flowers/progress")
    claims = {v.persistent_volume_claim.claim_name for v in pod_spec.volumes if v.persistent_volume_claim}
    assert claims == {"data", "models"}
    assert c.security_context.allow_privilege_escalation is False
    assert pod_spec.automount_service_account_token is False
    assert job.spec.pod_failure_policy.rules[0].on_exit_codes.values == list(PERMANENT_EXIT_CODES)
    # The Job is the only object the operator creates: one write before training starts.
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    assert [cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items] == ["kube-root-ca.crt"]
    assert [sa.metadata.name for sa in core.list_namespaced_service_account(namespace).items] == ["default"]
    assert not rbac.list_namespaced_role(namespace).items and not rbac.list_namespaced_role_binding(namespace).items
    # What the Job controller made of it: the pod mounts no API credential, only the job's progress token.
    pod = jobs.live_pod("flowers")
    assert pod.spec.automount_service_account_token is False and pod.spec.service_account_name == "default"
    mounts = {m.mount_path for m in pod.spec.containers[0].volume_mounts}
    assert "/var/run/secrets/kubernetes.io/serviceaccount" not in mounts and names.PROGRESS_TOKEN_DIR in mounts
    token = next(v for v in pod.spec.volumes if v.name == "progress-token").projected.sources[0]
    assert token.service_account_token.audience == f"headstart.dev/{namespace}/flowers"
    # The pod passed Pod Security "restricted" (else the Job controller could not create it); it waits for its
    # claims, which do not exist here, and the status says so.
    status = jobs.wait_phase("flowers", "Pending", "MissingVolume")
    assert 'persistentvolumeclaim "' in status["message"]
    assert status["trainingJob"] == "flowers" and status["observedGeneration"] == created["metadata"]["generation"]
    assert jobs.condition("flowers", "Created")["status"] == "True"
    assert jobs.condition("flowers", "Reconciling")["status"] == "True"
    assert jobs.get("flowers")["spec"] == created["spec"]  # the operator never writes into spec


def test_running_then_succeeded_with_model_from_the_termination_message(jobs, api_client, kubelet, namespace):
    jobs.create(job_manifest("ok"))
    pod = jobs.live_pod("ok")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Running")
    running = jobs.wait_phase("ok", "Running", "Training")
    assert running["startTime"] and pod.metadata.name in running["message"]
    assert jobs.condition("ok", "Running")["status"] == "True"
    model = {"uri": "pvc://models/ok", "sha256": "a" * 64, "formats": ["keras"], "classNames": ["cat", "dog"]}
    finish_pod(api_client, namespace, pod.metadata.name, 0, json.dumps({"model": model}))
    done = jobs.wait_phase("ok", "Succeeded", timeout=60)
    assert done["model"] == model  # the trainer's own patch was "lost": taken from the termination message
    assert done["completionTime"]
    conditions = {c["type"]: c["status"] for c in done["conditions"]}
    assert conditions["Ready"] == "True" and conditions["Reconciling"] == "False" and conditions["Stalled"] == "False"
    reasons = [e.reason for e in jobs.events("ok")]
    for reason in ("Created", "Training", "Succeeded"):
        assert reason in reasons, reasons


def test_a_permanent_exit_code_fails_at_once_without_retry(jobs, api_client, kubelet, namespace):
    jobs.create(job_manifest("nodata", runPolicy={"backoffLimit": 3}))
    pod = jobs.live_pod("nodata")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    message = json.dumps({"error": "dataset.imageFolder: no folder at /mnt/headstart/pvc/data/photos"})
    finish_pod(api_client, namespace, pod.metadata.name, ExitCode.DATASET, message)
    failed = jobs.wait_phase("nodata", "Failed", "BadDataset", timeout=60)
    assert "no folder at" in failed["message"] and "not retried" in failed["message"]
    assert len(jobs.pods("nodata")) == 1  # podFailurePolicy: no second pod
    assert jobs.condition("nodata", "Stalled")["status"] == "True"
    assert jobs.wait_event("nodata", "BadDataset").type == "Warning"


def test_a_transient_failure_is_retried_and_oom_reported(jobs, api_client, kubelet, namespace):
    jobs.create(job_manifest("flaky", runPolicy={"backoffLimit": 1}))
    first = jobs.live_pod("flaky")
    kubelet.wait_scheduled(namespace, first.metadata.name)
    finish_pod(api_client, namespace, first.metadata.name, 137, reason="OOMKilled")
    second = jobs.live_pod("flaky", timeout=60)
    assert second.metadata.name != first.metadata.name  # retried within backoffLimit
    status = jobs.wait_status("flaky", "a retry explained",
                              lambda s: "retry 1 after OOMKilled" in (s.get("message") or ""))
    assert status["phase"] == "Pending"
    kubelet.wait_scheduled(namespace, second.metadata.name)
    finish_pod(api_client, namespace, second.metadata.name, 137, reason="OOMKilled")
    failed = jobs.wait_phase("flaky", "Failed", "OOMKilled", timeout=60)
    assert "spec.resources.memory" in failed["message"] and "2 attempts" in failed["message"]


def test_deadline_exceeded_is_reported(jobs, kubelet, namespace):
    jobs.create(job_manifest("slow", runPolicy={"activeDeadlineSeconds": 2}))
    pod = jobs.live_pod("slow")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Running")
    failed = jobs.wait_phase("slow", "Failed", "DeadlineExceeded", timeout=60)
    assert "activeDeadlineSeconds (2 s)" in failed["message"]
