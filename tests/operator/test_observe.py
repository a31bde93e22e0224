"""Phase, reason and message from a training Job and its pods; the status fields built from them."""

from __future__ import annotations

import json

import pytest

from headstart.api import names
from headstart.api.reasons import Phase, Reason
from headstart.api.verdict import Verdict, build_conditions, needs_patch, status_patch
from headstart.operator.observe import observe


def job(conditions=(), suspend=False, labels=None, **status):
    return {"metadata": {"name": "j", "labels": labels or {}}, "spec": {"suspend": suspend,
                                                                        "activeDeadlineSeconds": 60},
            "status": {"conditions": [{"type": t, "status": "True", "reason": r} for t, r in conditions],
                       **status}}


def pod(phase, name="j-abc", created="2026-01-01T00:00:00Z", node="gpu-node-0", conditions=(), waiting=None,
        terminated=None):
    state = {}
    if waiting:
        state["waiting"] = waiting
    if terminated:
        state["terminated"] = terminated
    return {"metadata": {"name": name, "creationTimestamp": created}, "spec": {"nodeName": node},
            "status": {"phase": phase, "conditions": list(conditions),
                       "containerStatuses": [{"name": names.CONTAINER_NAME, "image": "trainer:1", "state": state}]}}


def unschedulable(message):
    return pod("Pending", node=None, conditions=[{"type": "PodScheduled", "status": "False",
                                                  "reason": "Unschedulable", "message": message}])


@pytest.mark.parametrize("the_pod, reason, words", [
    (unschedulable("0/2 nodes are available: 2 Insufficient nvidia.com/gpu."), "InsufficientGPU", "nvidia.com/gpu"),
    (unschedulable("0/2 nodes are available: 2 node(s) didn't match Pod's node affinity/selector."),
     "NoMatchingNode", "nodeSelector"),
    (unschedulable("0/2 nodes are available: 2 node(s) had untolerated taint {gpu: yes}."), "UntoleratedTaint",
     "taint"),
    (pod("Pending", waiting={"reason": "ImagePullBackOff", "message": "Back-off pulling image"}), "ImagePullError",
     "trainer:1"),
    (pod("Pending", waiting={"reason": "CreateContainerConfigError", "message": 'secret "s3" not found'}),
     "ContainerConfigError", 'secret "s3" not found'),
])
def test_pending_pods_are_explained(the_pod, reason, words):
    seen = observe(job(), [the_pod], user_suspend=False)
    assert (seen.phase, seen.reason) == ("Pending", reason)
    assert words in seen.message


def test_no_pod_and_a_quota_event_is_explained():
    seen = observe(job(), [], user_suspend=False,
                   failed_create='pods "j-x" is forbidden: exceeded quota: gpus, requested: nvidia.com/gpu=1')
    assert (seen.phase, seen.reason) == ("Pending", "QuotaExceeded")
    assert "exceeded quota" in seen.message


def test_running_and_succeeded_with_model_from_the_termination_message():
    assert observe(job(), [pod("Running")], user_suspend=False).phase == "Running"
    model = {"uri": "pvc://m/x", "sha256": "ab", "formats": ["keras"], "classNames": ["a", "b"]}
    done = pod("Succeeded", terminated={"exitCode": 0, "message": json.dumps({"model": model})})
    seen = observe(job([("Complete", "")], completionTime="2026-01-01T01:00:00Z"), [done], user_suspend=False)
    assert (seen.phase, seen.model, seen.completion_time) == ("Succeeded", model, "2026-01-01T01:00:00Z")


def test_the_termination_messages_stages_and_metrics_fill_in_what_lost_snapshots_left_out():
    """The last snapshots lost (the API server away as the trainer ended): the stages and final metrics of the
    termination message go into status where it lists more stages; never over a status that says as much."""
    model = {"uri": "pvc://m/x", "sha256": "ab", "formats": ["keras"]}
    stages = [{"name": "head", "epochsCompleted": 1}, {"name": "tune", "epochsCompleted": 30, "stoppedEarly": False}]
    message = json.dumps({"model": model, "metrics": {"val_accuracy": 0.9, "test_accuracy": 0.8}, "stages": stages})
    done = pod("Succeeded", terminated={"exitCode": 0, "message": message})
    seen = observe(job([("Complete", "")]), [done], user_suspend=False)
    verdict = Verdict(seen.phase, seen.reason, seen.message, created=True, model=seen.model, final=seen.final)
    stale = {"stages": stages[:1], "metrics": {"loss": 0.5}}
    patch = status_patch(stale, verdict, 1, T1)
    assert [(s["name"], s["epochsCompleted"]) for s in patch["stages"]] == [("head", 1), ("tune", 30)]
    assert patch["metrics"] == {"val_accuracy": 0.9, "test_accuracy": 0.8}
    complete = {"stages": stages, "metrics": {"val_accuracy": 0.91}}  # the snapshots arrived: they stand
    unchanged = status_patch(complete, verdict, 1, T1)
    assert "stages" not in unchanged and "metrics" not in unchanged
    garbled = Verdict(seen.phase, seen.reason, "", created=True, final={"stages": [{"epochs": "x"}, 3]})
    assert "stages" not in status_patch(stale, garbled, 1, T1)


@pytest.mark.parametrize("terminated, job_reason, reason, words", [
    ({"exitCode": 11, "message": json.dumps({"error": "dataset.imageFolder: no folder at /x"})}, "PodFailurePolicy",
     "BadDataset", "no folder at /x"),
    ({"exitCode": 2, "message": "loading\nerror: spec.stages[0]: bad\n"}, "PodFailurePolicy", "InvalidSpec",
     "error: spec.stages[0]: bad"),
    ({"exitCode": 137, "reason": "OOMKilled"}, "BackoffLimitExceeded", "OOMKilled", "spec.resources.memory"),
    ({"exitCode": 75, "message": json.dumps({"error": "cannot write"})}, "BackoffLimitExceeded", "TrainerFailed",
     "gave up after 3 attempts"),
])
def test_failures_say_why(terminated, job_reason, reason, words):
    failed = pod("Failed", terminated=terminated)
    seen = observe(job([("Failed", job_reason)], failed=3), [failed], user_suspend=False)
    assert (seen.phase, seen.reason) == ("Failed", reason)
    assert words in seen.message


def test_deadline_exceeded():
    seen = observe(job([("Failed", "DeadlineExceeded")]), [], user_suspend=False)
    assert (seen.phase, seen.reason) == ("Failed", "DeadlineExceeded")
    assert "60 s" in seen.message


def test_suspended_by_the_user_or_queued_by_kueue():
    assert observe(job(suspend=True), [], user_suspend=True).phase == "Suspended"
    queued = observe(job(suspend=True, labels={names.LABEL_KUEUE_QUEUE: "team-a"}), [], user_suspend=False)
    assert (queued.phase, queued.reason) == ("Pending", "QueuedByKueue")
    assert "team-a" in queued.message


def test_a_retry_says_what_failed_before():
    first = pod("Failed", name="j-1", created="2026-01-01T00:00:00Z", terminated={"exitCode": 137,
                                                                                 "reason": "OOMKilled"})
    second = pod("Running", name="j-2", created="2026-01-01T00:05:00Z")
    seen = observe(job(failed=1), [first, second], user_suspend=False)
    assert seen.phase == "Running" and "retry 1 after OOMKilled" in seen.message


def test_a_pod_on_a_node_that_stopped_answering_is_node_lost():
    running = pod("Running", node="gpu-node-0")
    lost = {"gpu-node-0": {"ready": "Unknown", "since": "2026-01-01T00:10:00Z"}}
    seen = observe(job(), [running], user_suspend=False, nodes=lost)
    assert (seen.phase, seen.reason) == ("Running", "NodeLost")
    assert "node gpu-node-0 stopped answering since 2026-01-01T00:10:00Z" in seen.message
    being_deleted = pod("Running", node="gpu-node-0")
    being_deleted["metadata"]["deletionTimestamp"] = "2026-01-01T00:15:00Z"  # evicted, but nobody confirms it
    assert observe(job(), [being_deleted], user_suspend=False, nodes=lost).reason == "NodeLost"
    ready = {"gpu-node-0": {"ready": "True", "since": "2026-01-01T00:20:00Z"}}
    assert observe(job(), [running], user_suspend=False, nodes=ready).reason == "Training"
    assert observe(job(), [running], user_suspend=False).reason == "Training"  # nodes unknown: as before


def conds(patch):
    return {c["type"]: c for c in patch["conditions"]}


T1, T2 = "2026-01-01T00:00:01Z", "2026-01-01T00:00:02Z"


def test_conditions_follow_the_phase_with_kstatus_conventions():
    running = status_patch({}, Verdict(Phase.RUNNING, Reason.TRAINING, "m", created=True, training_job="j"), 3, T1)
    c = conds(running)
    assert running["observedGeneration"] == 3 and running["trainingJob"] == "j"
    assert [c[t]["status"] for t in ("Created", "Running", "Ready", "Reconciling", "Stalled")] == \
        ["True", "True", "False", "True", "False"]
    assert all(x["observedGeneration"] == 3 for x in running["conditions"])
    done = status_patch(running, Verdict(Phase.SUCCEEDED, Reason.SUCCEEDED, "done", created=True, training_job="j"),
                        3, T2)
    c2 = conds(done)
    assert c2["Ready"]["status"] == "True" and c2["Reconciling"]["status"] == "False"
    assert c2["Created"]["lastTransitionTime"] == T1  # unchanged status keeps its transition time
    assert c2["Running"]["lastTransitionTime"] == T2
    assert done["completionTime"] == T2
    failed = status_patch({}, Verdict(Phase.FAILED, Reason.INVALID_SPEC, "bad"), 1, T1)
    assert conds(failed)["Stalled"]["status"] == "True" and conds(failed)["Created"]["status"] == "False"
    # a phase that is no longer terminal clears completionTime (a JSON merge patch's null)
    again = status_patch(done, Verdict(Phase.RUNNING, Reason.TRAINING, "m", created=True), 3, T2)
    assert again["completionTime"] is None


def test_a_refused_spec_change_stalls_but_keeps_the_phase():
    v = Verdict(Phase.RUNNING, Reason.TRAINING, "m", created=True, training_job="j").with_refusal("spec changed")
    patch = status_patch({}, v, 2, T1)
    assert patch["phase"] == "Running"
    assert conds(patch)["Stalled"]["reason"] == "SpecChangeRefused"
    assert patch["message"].startswith("spec changed")


def test_no_patch_when_nothing_changed_and_trainer_fields_untouched():
    v = Verdict(Phase.RUNNING, Reason.TRAINING, "m", created=True, training_job="j")
    first = status_patch({}, v, 1, T1)
    old = {**first, "stage": "head", "epoch": 2, "metrics": {"loss": 1.0}}
    again = status_patch(old, v, 1, T2)
    assert not needs_patch(old, again)
    assert not {"stage", "epoch", "metrics", "stages"} & set(again)
    model = {"uri": "u"}
    assert "model" not in status_patch({"model": model}, Verdict(Phase.SUCCEEDED, Reason.SUCCEEDED, "",
                                                                 model={"uri": "x"}), 1)


def test_build_conditions_lists_every_type_once():
    out = build_conditions(None, Verdict(Phase.PENDING, Reason.INSUFFICIENT_GPU, "m"), None, T1)
    assert [c.type for c in out] == ["Created", "Running", "Succeeded", "Failed", "Suspended", "Ready",
                                     "Reconciling", "Stalled"]
