"""The operator's progress endpoint on the real API server: a training pod's token (audience: its own job,
bound to its pod by the TokenRequest API, as the kubelet projects it) reports through the trainer's own
client; every forged request is refused and changes nothing; the operator stays the only writer of status
and picks up again after a restart. Pods are on fake nodes, moved through their phases as a kubelet would;
tests/cluster/test_real_faults.py has a real pod do the same."""

from __future__ import annotations

import pytest
from controlplane.waiting import wait_for
from kubernetes import client
from operator_support import job_manifest, pod_token, post_progress

from headstart.api.progress import audience
from headstart.trainer.progress import PodReporter, ProgressClient, Sender
from headstart.trainer.reporting import Progress, RunPlan, StagePlan, StageResult

HEAD = StagePlan("head", 0, 2, "none", True)


def running(jobs, kubelet, namespace, name):
    jobs.create(job_manifest(name))
    pod = jobs.live_pod(name)
    kubelet.wait_scheduled(namespace, pod.metadata.name)
    kubelet.set_phase(namespace, pod.metadata.name, "Running")
    jobs.wait_phase(name, "Running")
    return jobs.live_pod(name)


def trainer_fields(status: dict) -> dict:
    return {k: status.get(k) for k in ("stage", "stageIndex", "epoch", "epochs", "metrics", "stages", "model")}


def test_a_pods_own_token_reports_and_nothing_else_changes_status(jobs, operator, api_client, kubelet, kubectl,
                                                                  namespace, tmp_path):
    mine = running(jobs, kubelet, namespace, "mine")
    theirs = running(jobs, kubelet, namespace, "theirs")
    token_file = tmp_path / "token"
    token_file.write_text(pod_token(api_client, namespace, audience(namespace, "mine"), mine))
    url = f"https://127.0.0.1:{operator.endpoint.port}/v1/namespaces/{namespace}/finetunejobs/mine/progress"
    sender = Sender(ProgressClient(url, str(token_file), operator.endpoint.ca), min_interval=0)
    reporter = PodReporter(sender)
    reporter.started(RunPlan("mine", "u", [HEAD], ["a", "b"], {"train": 4}))
    reporter.stage_started(HEAD, 0, 4)
    reporter.epoch_ended(Progress("head", 0, 1, 2, {"loss": 0.5, "accuracy": 0.75}))
    reporter.stage_ended(StageResult("head", 0, 2, 2, 0.8, 3.5))
    reporter.close()
    assert sender.failures == 0 and sender.sent_seq == reporter.snapshot.seq
    status = jobs.wait_status("mine", "the last snapshot written", lambda s: s.get("stages"), 30)
    assert (status["stage"], status["stageIndex"], status["epoch"], status["epochs"]) == ("head", 0, 2, 2)
    assert status["metrics"] == {"loss": 0.5, "accuracy": 0.75}
    assert status["stages"] == [{"name": "head", "epochsCompleted": 2, "durationSeconds": 3.5,
                                 "stoppedEarly": False, "bestValAccuracy": 0.8}]
    assert status["phase"] == "Running"  # the operator's own fields as they were
    written_by = {m["manager"] for m in jobs.get("mine")["metadata"]["managedFields"]
                  if m.get("subresource") == "status"}
    assert written_by == {"headstart-operator"}, written_by  # one writer of status

    # the same snapshot again, or an older one: ignored, nothing changes
    token = token_file.read_text()
    again = reporter.snapshot.to_wire(exclude_unset=False)
    assert post_progress(operator.endpoint, namespace, "mine", token, again) == \
        (200, {"accepted": False, "reason": "an older snapshot than one already taken"})
    older = {**again, "seq": 1, "epoch": 0}
    assert post_progress(operator.endpoint, namespace, "mine", token, older)[1]["accepted"] is False

    # forged requests: each refused, neither job's status changes
    before = {name: jobs.status(name) for name in ("mine", "theirs")}
    kubectl_token = kubectl("create", "token", "default", "-n", namespace,
                            f"--audience={audience(namespace, 'mine')}").stdout.strip()
    api_token = kubectl("create", "token", "default", "-n", namespace).stdout.strip()
    snapshot = {"seq": 99, "stage": "hacked", "epoch": 7, "metrics": {"loss": 9.0}}
    forged = [
        ("no token", "mine", None, 401),
        ("a token for the API server's audience", "mine", api_token, 401),
        ("mine's token at theirs' endpoint", "theirs", token, 401),
        ("a token of mine's pod for theirs' audience", "theirs",
         pod_token(api_client, namespace, audience(namespace, "theirs"), mine), 403),
        ("a token of theirs' pod for mine's audience", "mine",
         pod_token(api_client, namespace, audience(namespace, "mine"), theirs), 403),
        ("`kubectl create token` for mine's audience, bound to no pod", "mine", kubectl_token, 403),
    ]
    for what, target, forged_token, code in forged:
        answer = post_progress(operator.endpoint, namespace, target, forged_token, snapshot)
        assert answer[0] == code, (what, answer)
    assert post_progress(operator.endpoint, namespace, "nobody", token, snapshot)[0] == 401  # no such audience
    assert post_progress(operator.endpoint, namespace, "mine", token, {"seq": "x"})[0] == 400
    after = {name: jobs.status(name) for name in ("mine", "theirs")}
    assert {n: trainer_fields(s) for n, s in after.items()} == {n: trainer_fields(s) for n, s in before.items()}

    # The pod's token is for its job alone: the API server refuses it.
    configuration = client.Configuration.get_default_copy()
    configuration.host, configuration.api_key = api_client.configuration.host, {"authorization": f"Bearer {token}"}
    configuration.ssl_ca_cert, configuration.cert_file, configuration.key_file = \
        api_client.configuration.ssl_ca_cert, None, None
    with pytest.raises(client.ApiException) as refused:
        client.CoreV1Api(client.ApiClient(configuration)).list_namespaced_pod(namespace)
    assert refused.value.status == 401

    # ... and the operator's next write of its own fields leaves the trainer's alone
    kubelet.set_phase(namespace, mine.metadata.name, "Failed", exit_code=1)
    retried = jobs.wait_status("mine", "a retry reported", lambda s: "retry 1" in (s.get("message") or ""), 60)
    assert trainer_fields(retried) == trainer_fields(after["mine"])


def test_progress_resumes_after_the_operator_restarts(jobs, operator, api_client, kubelet, namespace):
    pod = running(jobs, kubelet, namespace, "steady")
    token = pod_token(api_client, namespace, audience(namespace, "steady"), pod)
    assert post_progress(operator.endpoint, namespace, "steady", token,
                         {"seq": 1, "stage": "head", "epoch": 1, "epochs": 3})[0] == 200
    jobs.wait_status("steady", "epoch 1", lambda s: s.get("epoch") == 1)
    operator.kill()  # SIGKILL: nothing it kept in memory survives
    operator.start()

    def taken():
        code, body = post_progress(operator.endpoint, namespace, "steady", token,
                                   {"seq": 2, "stage": "head", "epoch": 2, "epochs": 3})
        assert code in (200, 503), body  # 503: the restarted operator has not seen the pod yet; try again
        return code == 200 and body["accepted"]

    wait_for(taken, "the restarted operator to take the pod's next snapshot", 60)
    status = jobs.wait_status("steady", "epoch 2", lambda s: s.get("epoch") == 2)
    assert status["phase"] == "Running" and status["stage"] == "head"
