"""Progress from inside the pod: the per-job ServiceAccount may patch its own FineTuneJob's status, and
nothing else; the operator and the trainer each keep to their own status fields."""

from __future__ import annotations

import urllib.error

import pytest
from kubernetes import client
from operator_support import ca_file, job_manifest, service_account_token

from headstart.trainer.kube_status import KubeStatusReporter, StatusClient
from headstart.trainer.reporting import Progress, StagePlan, StageResult


def reporter_for(control_plane, kubectl, tmp_path, namespace: str, job: str, token_of: str) -> StatusClient:
    token = tmp_path / f"{token_of}.token"
    token.write_text(service_account_token(kubectl, namespace, f"{token_of}-trainer"))
    return StatusClient(control_plane.server, namespace, job, str(token), str(ca_file(
        control_plane.kubeconfig, tmp_path / "ca.crt")))


def test_the_jobs_own_token_patches_its_status_and_nothing_else(jobs, control_plane, kubectl, kubelet,
                                                                 namespace, tmp_path):
    jobs.create(job_manifest("mine"))
    jobs.create(job_manifest("other"))
    pod = jobs.live_pod("mine")
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Running")
    jobs.wait_phase("mine", "Running")
    jobs.wait_phase("other", "Pending")

    own = reporter_for(control_plane, kubectl, tmp_path, namespace, "mine", token_of="mine")
    reporter = KubeStatusReporter(own, min_interval=0)
    reporter.stage_started(StagePlan("head", 0, 2, "none", True), 0, 4)
    reporter.epoch_ended(Progress("head", 0, 1, 2, {"loss": 0.5, "accuracy": 0.75}))
    reporter.stage_ended(StageResult("head", 0, 2, 2, 0.8, 3.5))
    assert reporter.failures == 0 and not reporter.pending
    status = jobs.status("mine")
    assert (status["stage"], status["stageIndex"], status["epochs"], status["metrics"]) == \
        ("head", 0, 2, {"loss": 0.5, "accuracy": 0.75})
    assert status["stages"] == [{"name": "head", "epochsCompleted": 2, "durationSeconds": 3.5,
                                 "stoppedEarly": False, "bestValAccuracy": 0.8}]
    assert status["phase"] == "Running"  # the trainer's patch left the operator's fields alone

    # ... and the operator's next write leaves the trainer's fields alone
    kubelet.set_phase(namespace, pod.metadata.name, "Failed", exit_code=1)
    after = jobs.wait_status("mine", "a retry reported", lambda s: "retry 1" in (s.get("message") or ""), 60)
    assert after["stages"] == status["stages"] and after["metrics"] == status["metrics"]

    # The same token may not touch another job's status, nor its own spec.
    stranger = reporter_for(control_plane, kubectl, tmp_path, namespace, "other", token_of="mine")
    with pytest.raises(urllib.error.HTTPError) as denied:
        stranger.patch_status({"stage": "hacked"})
    assert denied.value.code == 403
    assert "stage" not in jobs.status("other")
    with pytest.raises(urllib.error.HTTPError) as denied:
        stranger.get_status()
    assert denied.value.code == 403
    review = client.AuthorizationV1Api(jobs.api)
    for verb, resource, sub in (("patch", "finetunejobs", ""), ("delete", "finetunejobs", ""),
                                ("list", "finetunejobs", ""), ("get", "secrets", "")):
        answer = review.create_subject_access_review({"spec": {
            "user": f"system:serviceaccount:{namespace}:mine-trainer",
            "resourceAttributes": {"namespace": namespace, "verb": verb, "group": "headstart.dev"
                                   if resource == "finetunejobs" else "", "resource": resource,
                                   "subresource": sub, "name": "mine"}}})
        assert answer.status.allowed is False, (verb, resource)


def test_a_lost_api_does_not_stop_the_reporter(control_plane, tmp_path):
    token = tmp_path / "token"
    token.write_text("not-a-valid-token")
    reporter = KubeStatusReporter(StatusClient(control_plane.server, "nowhere", "nothing", str(token),
                                               str(ca_file(control_plane.kubeconfig, tmp_path / "ca.crt"))),
                                  min_interval=0)
    reporter.stage_started(StagePlan("head", 0, 2, "none", True), 0, 4)  # 401: kept, no exception
    assert reporter.failures == 1 and reporter.pending["stage"] == "head"
