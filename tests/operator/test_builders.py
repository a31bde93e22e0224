"""The pure builders: a FineTuneJob in, the manifest of its one child, the training Job, out."""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from headstart.api import names
from headstart.api.exitcodes import PERMANENT_EXIT_CODES
from headstart.api.job import FineTuneJob
from headstart.operator import builders
from headstart.operator.config import TrainerConfig

REPO = Path(__file__).resolve().parents[2]
UID = "11111111-2222-3333-4444-555555555555"


def body_of(example: str = "flowers-xception.yaml", namespace: str = "team-a", **spec_changes) -> dict:
    doc = yaml.safe_load((REPO / "examples" / example).read_text())
    doc["metadata"].update(namespace=namespace, uid=UID, generation=1)
    doc["spec"].update(spec_changes)
    return doc


def parsed(body: dict) -> FineTuneJob:
    return FineTuneJob.model_validate({k: v for k, v in body.items() if k != "status"})


CA = "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
PROGRESS = TrainerConfig(image="trainer:1", progress_url="https://op.example:8443/", progress_ca=CA)


def job_for(body: dict, config: TrainerConfig | None = None, from_jobs: dict | None = None) -> dict:
    return builders.build_job(body, parsed(body), config or PROGRESS, from_jobs)


def container(job: dict) -> dict:
    return job["spec"]["template"]["spec"]["containers"][0]


def test_job_runs_the_trainer_with_an_explicit_command_gpu_and_owner():
    body = body_of()
    job = job_for(body)
    c = container(job)
    assert job["metadata"]["name"] == "flowers-xception"
    assert job["metadata"]["ownerReferences"] == [{
        "apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "name": "flowers-xception", "uid": UID,
        "controller": True, "blockOwnerDeletion": True}]
    assert c["name"] == names.CONTAINER_NAME
    assert c["command"] == ["python", "-m", "headstart.trainer"]
    assert c["args"] == ["--job", names.JOB_FILE]
    assert c["image"] == "trainer:1" and c["imagePullPolicy"] == "IfNotPresent"
    assert c["resources"] == {"limits": {"nvidia.com/gpu": "1"}}
    env = {e["name"]: e for e in c["env"]}
    assert env[names.ENV_JOB_NAME]["value"] == "flowers-xception"
    assert env[names.ENV_JOB_NAMESPACE]["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}
    assert env[names.ENV_PVC_ROOT]["value"] == names.PVC_ROOT
    pod = job["spec"]["template"]["spec"]
    assert pod["restartPolicy"] == "Never"
    assert job["spec"]["backoffLimit"] == 2 and job["spec"]["suspend"] is False
    assert "activeDeadlineSeconds" not in job["spec"] and "ttlSecondsAfterFinished" not in job["spec"]
    assert job["spec"]["template"]["metadata"]["labels"][names.LABEL_FINETUNEJOB] == "flowers-xception"


def test_output_pvc_is_mounted_under_the_pvc_root_once_per_claim():
    body = body_of(output={"uri": "pvc://models/flowers"},
                   dataset={"imageFolder": {"uri": "pvc://models/photos"}, "splits": {"validation": 0.2}})
    pod = job_for(body)["spec"]["template"]["spec"]
    claims = [v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v]
    assert claims == ["models"]
    mounts = {m["mountPath"]: m for m in container({"spec": {"template": {"spec": pod}}})["volumeMounts"]}
    assert f"{names.PVC_ROOT}/models" in mounts
    assert mounts[names.JOB_MOUNT_DIR]["readOnly"] is True


def test_every_pvc_a_job_reads_or_writes_is_mounted():
    body = body_of("flowers-continue.yaml")
    job = job_for(body, from_jobs={"flowers-xception": "pvc://archive/flowers-xception"})
    pod = job["spec"]["template"]["spec"]
    claims = sorted(v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v)
    assert claims == ["archive", "datasets", "models"]
    assert container(job)["args"] == ["--job", names.JOB_FILE, "--from-job",
                                      "flowers-xception=pvc://archive/flowers-xception"]


def test_inputs_are_mounted_read_only_and_only_the_output_claim_writable():
    body = body_of("flowers-continue.yaml")
    job = job_for(body, from_jobs={"flowers-xception": "pvc://archive/flowers-xception"})
    pod = job["spec"]["template"]["spec"]
    sources = {v["persistentVolumeClaim"]["claimName"]: v["persistentVolumeClaim"] for v in pod["volumes"]
               if "persistentVolumeClaim" in v}
    mounts = {m["mountPath"].rsplit("/", 1)[1]: m for m in container(job)["volumeMounts"]
              if m["mountPath"].startswith(names.PVC_ROOT)}
    output = body["spec"]["output"]["uri"].split("/")[2]
    for claim in ("archive", "datasets", "models"):
        writable = claim == output
        assert sources[claim].get("readOnly", False) is not writable, claim
        assert mounts[claim].get("readOnly", False) is not writable, claim
    assert pod["securityContext"]["fsGroupChangePolicy"] == "OnRootMismatch"
    # one claim for the data and the output: mounted once, writable
    shared = body_of(output={"uri": "pvc://work/runs/x"},
                     dataset={"imageFolder": {"uri": "pvc://work/data"}, "splits": {"validation": 0.2}})
    volumes = [v for v in job_for(shared)["spec"]["template"]["spec"]["volumes"] if "persistentVolumeClaim" in v]
    assert [v["persistentVolumeClaim"] for v in volumes] == [{"claimName": "work"}]


def test_restricted_security_context():
    pod = job_for(body_of())["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    sc = container({"spec": {"template": {"spec": pod}}})["securityContext"]
    assert sc["allowPrivilegeEscalation"] is False and sc["capabilities"] == {"drop": ["ALL"]}


def test_resources_scheduling_run_policy_env_and_caches():
    body = body_of(
        resources={"gpus": 2, "cpu": "4", "memory": "16Gi"},
        scheduling={"nodeSelector": {"gpu": "a100"}, "tolerations": [{"key": "gpu", "operator": "Exists",
                                                                        "effect": "NoSchedule"}],
                    "priorityClassName": "training", "queueName": "team-a"},
        runPolicy={"backoffLimit": 5, "activeDeadlineSeconds": 3600, "ttlSecondsAfterFinished": 600},
        env=[{"name": "AWS_ACCESS_KEY_ID", "secretKeyRef": {"name": "s3", "key": "id"}},
             {"name": "PLAIN", "value": "1"}],
        envFrom=[{"secretRef": {"name": "more"}}],
        image="my/trainer:2")
    config = TrainerConfig(image="trainer:1", pull_policy="Never", keras_cache_claim="keras",
                           tfds_cache_claim="tfds")
    job = job_for(body, config)
    c, pod = container(job), job["spec"]["template"]["spec"]
    assert c["image"] == "my/trainer:2" and c["imagePullPolicy"] == "Never"
    assert c["resources"] == {"limits": {"nvidia.com/gpu": "2", "cpu": "4", "memory": "16Gi"},
                              "requests": {"cpu": "4", "memory": "16Gi"}}
    assert pod["nodeSelector"] == {"gpu": "a100"}
    assert pod["tolerations"] == [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}]
    assert pod["priorityClassName"] == "training"
    assert job["metadata"]["labels"][names.LABEL_KUEUE_QUEUE] == "team-a"
    assert job["spec"]["backoffLimit"] == 5
    assert job["spec"]["activeDeadlineSeconds"] == 3600 and job["spec"]["ttlSecondsAfterFinished"] == 600
    env = {e["name"]: e for e in c["env"]}
    assert env["AWS_ACCESS_KEY_ID"] == {"name": "AWS_ACCESS_KEY_ID",
                                        "valueFrom": {"secretKeyRef": {"name": "s3", "key": "id"}}}
    assert env["PLAIN"]["value"] == "1"
    assert env[names.ENV_KERAS_HOME]["value"] == names.KERAS_CACHE_DIR
    assert env[names.ENV_TFDS_DATA_DIR]["value"] == names.TFDS_CACHE_DIR
    assert c["envFrom"] == [{"secretRef": {"name": "more"}}]
    claims = {v["persistentVolumeClaim"]["claimName"] for v in pod["volumes"] if "persistentVolumeClaim" in v}
    assert {"keras", "tfds"} <= claims


def test_the_pods_grace_period_after_sigterm_is_the_run_policys_60_s_by_default():
    from pydantic import ValidationError

    assert job_for(body_of())["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    body = body_of(runPolicy={"terminationGracePeriodSeconds": 300})
    assert job_for(body)["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 300
    for bad in (0, 3601, "soon"):
        with pytest.raises(ValidationError, match="terminationGracePeriodSeconds"):
            parsed(body_of(runPolicy={"terminationGracePeriodSeconds": bad}))


def test_pod_failure_policy_fails_at_once_on_permanent_exit_codes_only():
    rules = job_for(body_of())["spec"]["podFailurePolicy"]["rules"]
    fail = [r for r in rules if r["action"] == "FailJob"]
    assert fail == [{"action": "FailJob", "onExitCodes": {"containerName": "trainer", "operator": "In",
                                                         "values": list(PERMANENT_EXIT_CODES)}}]
    for transient in (1, 75, 130, 137, 143):
        assert transient not in fail[0]["onExitCodes"]["values"]
    assert {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]} in rules


def test_the_spec_travels_inside_the_job_as_an_annotation_the_downward_api_mounts():
    body = body_of()
    job = job_for(body)
    template = job["spec"]["template"]
    rendered = yaml.safe_load(template["metadata"]["annotations"][names.ANNOTATION_SPEC])
    assert rendered["spec"] == body["spec"]  # the user's spec as written: no defaults written in
    assert rendered["apiVersion"] == "headstart.dev/v1alpha1"
    # the uid too: the trainer records it as the owner of the output and checkpoints (a job recreated under
    # its name is another job)
    assert rendered["metadata"] == {"name": "flowers-xception", "namespace": "team-a", "uid": UID}
    assert FineTuneJob.model_validate(rendered).metadata.uid == UID
    volume = next(v for v in template["spec"]["volumes"] if v["name"] == "job")
    assert volume == {"name": "job", "downwardAPI": {"items": [{
        "path": names.JOB_FILE_NAME, "fieldRef": {"fieldPath": "metadata.annotations['headstart.dev/spec']"}}]}}
    assert names.JOB_FILE == f"{names.JOB_MOUNT_DIR}/{names.JOB_FILE_NAME}"


def test_the_pod_holds_no_api_credential_only_a_token_for_its_jobs_progress():
    job = job_for(body_of())
    pod = job["spec"]["template"]["spec"]
    assert pod["automountServiceAccountToken"] is False
    assert "serviceAccountName" not in pod  # the namespace's default account, with no credential mounted
    token = next(v for v in pod["volumes"] if v["name"] == "progress-token")
    assert token["projected"]["sources"] == [{"serviceAccountToken": {
        "audience": "headstart.dev/team-a/flowers-xception", "expirationSeconds": 3600, "path": "token"}}]
    c = container(job)
    mounts = {m["name"]: m for m in c["volumeMounts"]}
    assert mounts["progress-token"] == {"name": "progress-token", "mountPath": names.PROGRESS_TOKEN_DIR,
                                        "readOnly": True}
    env = {e["name"]: e.get("value") for e in c["env"]}
    assert env[names.ENV_PROGRESS_URL] == \
        "https://op.example:8443/v1/namespaces/team-a/finetunejobs/flowers-xception/progress"
    assert env[names.ENV_PROGRESS_CA] == CA and env[names.ENV_PROGRESS_TOKEN] == names.PROGRESS_TOKEN_FILE
    # without an endpoint (--progress-port 0) nothing of it is in the pod
    plain = job_for(body_of(), TrainerConfig(image="trainer:1"))
    assert "progress-token" not in {v["name"] for v in plain["spec"]["template"]["spec"]["volumes"]}
    assert not {names.ENV_PROGRESS_URL, names.ENV_PROGRESS_CA} & {e["name"] for e in container(plain)["env"]}


def test_spec_hash_ignores_only_suspend():
    body = body_of()
    base = builders.spec_hash(body["spec"])
    suspended = copy.deepcopy(body["spec"])
    suspended["runPolicy"] = {"suspend": True}
    assert builders.spec_hash(suspended) == base
    changed = copy.deepcopy(body["spec"])
    changed["stages"][0]["epochs"] += 1
    assert builders.spec_hash(changed) != base
    job = job_for(body)
    assert job["metadata"]["annotations"][names.ANNOTATION_SPEC_HASH] == base


@pytest.mark.parametrize("length", [63, 64, 200])
def test_long_job_names_give_valid_children(length):
    body = body_of()
    body["metadata"]["name"] = ("n" * length)[:length]
    manifest = job_for(body)
    assert len(manifest["metadata"]["name"]) <= 63
    assert len(manifest["metadata"]["labels"][names.LABEL_FINETUNEJOB]) <= 63
    assert len(manifest["spec"]["template"]["metadata"]["labels"][names.LABEL_FINETUNEJOB]) <= 63
