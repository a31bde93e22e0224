"""Kueue's side of a queued job, without a cluster: the Workloads and LocalQueues the operator watches in, the
phase, reason and message of a Job that Kueue holds suspended out; and its way to hold one (spec.active).
The same stories against Kueue itself: tests/cluster/test_kueue_*.py."""

from __future__ import annotations

import asyncio
from pathlib import Path

import kopf
import pytest
import yaml

from headstart.api import names
from headstart.api.job import FineTuneJob
from headstart.api.reasons import Phase, Reason
from headstart.operator import builders, queueing
from headstart.operator.config import TrainerConfig
from headstart.operator.observe import Observation

REPO = Path(__file__).resolve().parents[2]
PENDING_MSG = "couldn't assign flavors to pod set main: insufficient unused quota for nvidia.com/gpu in flavor " \
              "gpu, 1 more needed"


def workload(ns, job, queue="team", priority=0, created="2026-01-01T00:00:00Z", conditions=(), active=True,
             admitted_to=None, held=False):
    return {"metadata": {"namespace": ns, "name": f"job-{job}-abcde", "uid": f"wl-{ns}-{job}",
                         "creationTimestamp": created,
                         "annotations": {queueing.HELD_BY: queueing.HELD_VALUE} if held else {},
                         "ownerReferences": [{"apiVersion": "batch/v1", "kind": "Job", "name": job,
                                              "uid": f"job-{ns}-{job}", "controller": True}]},
            "spec": {"queueName": queue, "priority": priority, "active": active},
            "status": {"conditions": [{"type": t, "status": s, "reason": r, "message": m} for t, s, r, m in conditions],
                       **({"admission": {"clusterQueue": admitted_to}} if admitted_to else {})}}


def waiting(message=PENDING_MSG):
    return [("QuotaReserved", "False", "Pending", message)]


def admitted():
    return [("QuotaReserved", "True", "QuotaReserved", "Quota reserved in ClusterQueue gpus"),
            ("Admitted", "True", "Admitted", "The workload is admitted")]


def view_with(*workloads, queues=(("a", "team", "gpus"), ("b", "team", "gpus"))):
    view = queueing.KueueView()
    for ns, lq, cq in queues:
        view.saw_local_queue(None, {"metadata": {"namespace": ns, "name": lq}, "spec": {"clusterQueue": cq}})
    for wl in workloads:
        view.saw_workload(None, wl)
    for wl in workloads:
        meta = wl["metadata"]
        job = meta["ownerReferences"][0]["name"]
        view.note_job(meta["namespace"], job, job, job)
    return view


def job_obj(ns, name, queue="team", suspend=True):
    return {"metadata": {"namespace": ns, "name": name, "labels": {names.LABEL_KUEUE_QUEUE: queue}},
            "spec": {"suspend": suspend}, "status": {}}


def body(ns, name):
    return {"metadata": {"namespace": ns, "name": name}}


QUEUED = Observation(Phase.PENDING, Reason.QUEUED_BY_KUEUE, "waiting in Kueue queue 'team' for admission")


def test_a_queued_jobs_job_is_created_suspended_and_any_other_as_run_policy_says():
    doc = yaml.safe_load((REPO / "examples" / "flowers-xception.yaml").read_text())
    doc["metadata"].update(namespace="a", uid="u", generation=1)
    plain = builders.build_job(doc, FineTuneJob.model_validate(doc), TrainerConfig(image="t:1"))
    assert plain["spec"]["suspend"] is False
    doc["spec"]["scheduling"] = {"queueName": "team"}
    queued = builders.build_job(doc, FineTuneJob.model_validate(doc), TrainerConfig(image="t:1"))
    assert queued["spec"]["suspend"] is True
    assert queued["metadata"]["labels"][names.LABEL_KUEUE_QUEUE] == "team"


def test_a_waiting_job_names_its_cluster_queue_its_position_and_what_it_waits_for():
    view = view_with(
        workload("a", "first", created="2026-01-01T00:00:01Z", conditions=waiting()),
        workload("b", "urgent", priority=100, created="2026-01-01T00:00:09Z", conditions=waiting()),
        workload("a", "second", created="2026-01-01T00:00:02Z", conditions=waiting()),
        workload("a", "running", conditions=admitted(), admitted_to="gpus"))
    seen = queueing.observe_queued(view, body("a", "second"), job_obj("a", "second"), QUEUED)
    assert (seen.phase, seen.reason) == (Phase.PENDING, Reason.QUEUED_BY_KUEUE)
    # higher priority first (another namespace's, same ClusterQueue), then the older
    assert "ClusterQueue 'gpus' (LocalQueue 'team'), position 3 of 3" in seen.message
    assert PENDING_MSG in seen.message
    first = queueing.observe_queued(view, body("a", "first"), job_obj("a", "first"), QUEUED)
    assert "position 2 of 3" in first.message


def test_when_the_queue_moves_every_job_waiting_there_is_told():
    view = view_with(workload("a", "first", conditions=waiting()),
                     workload("a", "second", created="2026-01-01T00:00:05Z", conditions=waiting()),
                     workload("b", "elsewhere", queue="other", conditions=waiting()),
                     queues=(("a", "team", "gpus"), ("b", "other", "cpus")))
    moved = view.saw_workload("MODIFIED", workload("a", "first", conditions=admitted(), admitted_to="gpus"))
    assert set(moved) == {("a", "first"), ("a", "second")}
    assert "position 1 of 1" in queueing.observe_queued(view, body("a", "second"), job_obj("a", "second"),
                                                        QUEUED).message
    # a status change that leaves the queue as it was concerns its own job only
    again = view.saw_workload("MODIFIED", workload("a", "second", created="2026-01-01T00:00:05Z",
                                                   conditions=waiting("still waiting")))
    assert again == [("a", "second")]


def test_a_preempted_job_is_suspended_and_names_who_preempted_it():
    evicted = ("Evicted", "True", "Preempted",
               "Preempted to accommodate a workload (UID: wl-b-urgent, JobUID: job-b-urgent) due to prioritization "
               "in the ClusterQueue; preemptor path: /gpus; preemptee path: /gpus")
    view = view_with(workload("a", "victim", conditions=[evicted, *waiting()]),
                     workload("b", "urgent", priority=1000, conditions=admitted(), admitted_to="gpus"))
    seen = queueing.observe_queued(view, body("a", "victim"), job_obj("a", "victim"), QUEUED)
    assert (seen.phase, seen.reason) == (Phase.SUSPENDED, Reason.PREEMPTED)
    assert "preempted by FineTuneJob b/urgent (priority 1000) due to prioritization in the ClusterQueue" in \
        seen.message
    assert "ClusterQueue 'gpus'" in seen.message and "position 1 of 1" in seen.message


def test_a_missing_local_queue_is_named():
    view = view_with(workload("a", "lost", queue="nope", conditions=[
        ("QuotaReserved", "False", "Inadmissible", "LocalQueue nope doesn't exist")]))
    seen = queueing.observe_queued(view, body("a", "lost"), job_obj("a", "lost", queue="nope"), QUEUED)
    assert (seen.phase, seen.reason) == (Phase.PENDING, Reason.MISSING_LOCAL_QUEUE)
    assert "LocalQueue 'nope' does not exist in namespace a" in seen.message
    assert Reason.MISSING_LOCAL_QUEUE.phase == Phase.PENDING


def test_before_kueue_has_a_workload_and_when_it_does_not_hold_the_job():
    view = view_with()
    seen = queueing.observe_queued(view, body("a", "new"), job_obj("a", "new"), QUEUED)
    assert seen.reason == Reason.QUEUED_BY_KUEUE and "no Workload yet" in seen.message and "'team'" in seen.message
    running = Observation(Phase.RUNNING, Reason.TRAINING, "training in pod p")
    assert queueing.observe_queued(view, body("a", "new"), job_obj("a", "new", suspend=False), running) is running
    plain = {"metadata": {"namespace": "a", "name": "x", "labels": {}}, "spec": {"suspend": True}}
    assert queueing.observe_queued(view, body("a", "x"), plain, QUEUED) is QUEUED


def test_suspended_by_run_policy_says_its_workload_is_deactivated():
    view = view_with(workload("a", "paused", active=False, held=True))
    user = Observation(Phase.SUSPENDED, Reason.SUSPENDED, "suspended by spec.runPolicy.suspend")
    seen = queueing.observe_queued(view, body("a", "paused"), job_obj("a", "paused"), user)
    assert seen.phase == Phase.SUSPENDED and "Kueue Workload job-paused-abcde is deactivated" in seen.message
    assert not queueing.pending(view.workload_of("a", "paused"))


class RecordingKube:
    def __init__(self):
        self.patches = []

    async def patch(self, url, body, urgent=True):
        self.patches.append((url, body))
        return {}


def test_run_policy_suspend_holds_the_workload_and_resumes_only_what_it_held():
    kube = RecordingKube()
    view = view_with(workload("a", "j"))
    asyncio.run(queueing.hold(kube, view, job_obj("a", "j", suspend=False), True))
    url, patch = kube.patches[-1]
    assert url == "/apis/kueue.x-k8s.io/v1beta2/namespaces/a/workloads/job-j-abcde"
    assert patch == {"metadata": {"annotations": {queueing.HELD_BY: queueing.HELD_VALUE}}, "spec": {"active": False}}
    view.saw_workload("MODIFIED", workload("a", "j", active=False, held=True))
    asyncio.run(queueing.hold(kube, view, job_obj("a", "j"), False))
    assert kube.patches[-1][1] == {"metadata": {"annotations": {queueing.HELD_BY: None}}, "spec": {"active": True}}
    # deactivated by Kueue itself (not held by the operator): resuming the FineTuneJob leaves it to Kueue
    view.saw_workload("MODIFIED", workload("a", "j", active=False))
    count = len(kube.patches)
    asyncio.run(queueing.hold(kube, view, job_obj("a", "j"), False))
    assert len(kube.patches) == count


def test_holding_waits_for_kueues_workload():
    with pytest.raises(kopf.TemporaryError):
        asyncio.run(queueing.hold(RecordingKube(), queueing.KueueView(), job_obj("a", "j"), True))
    asyncio.run(queueing.hold(RecordingKube(), queueing.KueueView(), job_obj("a", "j"), False))  # nothing to do
