"""Kueue for real: a job of higher priority (its PriorityClass, as Kueue reads spec.scheduling.priorityClassName)
preempts a running one, which says who preempted it and runs again, in the same Job, when it is admitted again;
spec.runPolicy.suspend of a queued job holds its Workload (Kueue's way) and never touches the Job's suspend,
which is Kueue's. Pods run on fake nodes; a deleted pod's end is confirmed as its kubelet would."""

from __future__ import annotations

from controlplane.waiting import wait_for
from kubernetes import client
from kueue_support import (
    KUEUE,
    confirm_deleted_pods,
    finish,
    operator_wrote_suspend,
    priority_class,
    queued,
    run_pod,
)

from headstart.operator import queueing


def test_a_higher_priority_job_preempts_a_running_one_which_runs_again_when_admitted(
        queued_jobs, queues, kubelet, api_client, why_of):
    jobs = queued_jobs
    low, high = priority_class(api_client, "headstart-low", 10), priority_class(api_client, "headstart-high", 1000)
    queues.local_queue("team", queues.cluster_queue(gpus=1, cpu="2", preempt=True))
    batch = client.BatchV1Api(api_client)
    jobs.create(queued("victim", "team", scheduling={"priorityClassName": low}))
    first_pod = run_pod(jobs, kubelet, "victim")
    jobs.wait_phase("victim", "Running", timeout=60)
    job_uid = batch.read_namespaced_job("victim", jobs.ns).metadata.uid

    jobs.create(queued("urgent", "team", scheduling={"priorityClassName": high}))
    wait_for(lambda: batch.read_namespaced_job("victim", jobs.ns).spec.suspend, "Kueue suspending the victim", 60)
    confirm_deleted_pods(jobs, "victim")  # its trainer stopped on SIGTERM
    status = jobs.wait_phase("victim", "Suspended", "Preempted", timeout=60)
    assert f"preempted by FineTuneJob {jobs.ns}/urgent (priority 1000)" in status["message"]
    assert "waiting to be admitted again in ClusterQueue" in status["message"]
    assert jobs.condition("victim", "Failed")["status"] == "False"
    assert jobs.wait_event("victim", "Preempted").type == "Warning"
    explained = why_of("victim")
    assert f"victim is Suspended (suspended): Preempted: preempted by FineTuneJob {jobs.ns}/urgent" in explained
    assert "next: Kueue preempted it" in explained

    run_pod(jobs, kubelet, "urgent")
    jobs.wait_phase("urgent", "Running", timeout=60)
    assert queues.admitted() == ["urgent"]
    assert jobs.status("victim")["phase"] == "Suspended"  # no quota for both
    finish(jobs, api_client, "urgent")

    again = run_pod(jobs, kubelet, "victim")  # admitted again: Kueue resumes the same Job
    assert again != first_pod
    resumed = jobs.wait_phase("victim", "Running", timeout=60)
    assert "training in pod" in resumed["message"]
    job = batch.read_namespaced_job("victim", jobs.ns)
    assert job.metadata.uid == job_uid and not job.spec.suspend
    assert not job.status.failed  # a preempted pod is not a failure (nor counted against backoffLimit)
    assert not operator_wrote_suspend(job)
    finish(jobs, api_client, "victim")


def test_run_policy_suspend_holds_a_queued_job_through_kueue(queued_jobs, queues, kubelet, api_client):
    jobs = queued_jobs
    queues.local_queue("team", queues.cluster_queue(gpus=1, cpu="2"))
    batch = client.BatchV1Api(api_client)
    custom = client.CustomObjectsApi(api_client)

    # Suspended before it is queued: nothing for Kueue to admit, no Job.
    jobs.create(queued("later", "team", runPolicy={"suspend": True}))
    status = jobs.wait_phase("later", "Suspended", "Suspended", timeout=60)
    assert "before it was queued" in status["message"] and not jobs.pods("later")
    assert not batch.list_namespaced_job(jobs.ns).items
    jobs.patch_spec("later", {"runPolicy": {"suspend": False}})
    run_pod(jobs, kubelet, "later")
    jobs.wait_phase("later", "Running", timeout=60)

    # Suspended while it runs: its Workload is deactivated, Kueue stops the Job, the operator waits.
    jobs.patch_spec("later", {"runPolicy": {"suspend": True}})
    wait_for(lambda: batch.read_namespaced_job("later", jobs.ns).spec.suspend, "Kueue suspending the Job", 60)
    confirm_deleted_pods(jobs, "later")
    status = jobs.wait_phase("later", "Suspended", "Suspended", timeout=60)
    wait_for(lambda: not queues.admitted(), "Kueue releasing the quota of the stopped Job", 30)
    workload = queues.workload_of("later")
    assert workload["spec"]["active"] is False
    assert workload["metadata"]["annotations"][queueing.HELD_BY] == queueing.HELD_VALUE
    assert f"its Kueue Workload {workload['metadata']['name']} is deactivated" in status["message"]

    # Resumed: the Workload is active again, Kueue admits it and resumes the same Job.
    jobs.patch_spec("later", {"runPolicy": {"suspend": False}})
    run_pod(jobs, kubelet, "later")
    jobs.wait_phase("later", "Running", timeout=60)
    workload = custom.get_namespaced_custom_object(*KUEUE, jobs.ns, "workloads", workload["metadata"]["name"])
    assert workload["spec"]["active"] is True and queueing.HELD_BY not in workload["metadata"].get("annotations", {})
    job = batch.read_namespaced_job("later", jobs.ns)
    assert not operator_wrote_suspend(job)
    finish(jobs, api_client, "later")
