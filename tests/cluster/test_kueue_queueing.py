"""Kueue for real (built from its Go module), with the operator under deploy/'s RBAC: jobs beyond a ClusterQueue's
quota wait in order and start as quota frees, never more at once than the quota holds; a job whose LocalQueue
does not exist says so, and starts once it does. Pods run on fake nodes (the `kubelet` fixture)."""

from __future__ import annotations

import re

from controlplane.waiting import wait_for
from kubernetes import client
from kueue_support import (
    finish,
    operator_wrote_suspend,
    queued,
    run_pod,
)

from headstart.api import names

POSITION = re.compile(r"position (\d+) of (\d+)")


def position(status: dict) -> tuple[int, int] | None:
    found = POSITION.search(status.get("message") or "")
    return (int(found.group(1)), int(found.group(2))) if found else None


def test_jobs_beyond_the_quota_wait_in_order_and_start_as_quota_frees(queued_jobs, queues, kubelet, api_client,
                                                                       why_of):
    jobs = queued_jobs
    cq = queues.cluster_queue(gpus=2, cpu="4")
    queues.local_queue("team", cq)
    batch = client.BatchV1Api(api_client)
    for name in ("run-0", "run-1"):
        jobs.create(queued(name, "team"))
    for name in ("run-0", "run-1"):
        run_pod(jobs, kubelet, name)
        jobs.wait_phase(name, "Running", timeout=60)
    waiting = ["wait-0", "wait-1", "wait-2"]
    for name in waiting:  # one at a time, so that Kueue's queue order (priority, then age) is their order
        jobs.create(queued(name, "team"))
        wait_for(lambda n=name: queues.workload_of(n), f"Kueue's Workload of {name}", 30)
    statuses = {n: jobs.wait_status(n, "queued, one of 3", lambda s: s.get("reason") == "QueuedByKueue"
                                    and (position(s) or (0, 0))[1] == 3 and "insufficient unused quota" in s["message"],
                                    timeout=60) for n in waiting}
    order = sorted(waiting, key=lambda n: position(statuses[n]))
    assert [position(statuses[n]) for n in order] == [(1, 3), (2, 3), (3, 3)]
    created = [queues.workload_of(n)["metadata"]["creationTimestamp"] for n in order]
    assert created == sorted(created)  # the older waits ahead (same priority)
    for name in waiting:
        status = statuses[name]
        assert status["phase"] == "Pending" and f"ClusterQueue '{cq}'" in status["message"]
        assert "nvidia.com/gpu" in status["message"]  # what it waits for, in Kueue's words
        assert batch.read_namespaced_job(name, jobs.ns).spec.suspend is True
        assert not jobs.pods(name)
        assert jobs.condition(name, "Suspended")["status"] == "True"
    explained = why_of(order[1])
    assert f"{order[1]} is Pending (waiting to run): QueuedByKueue" in explained
    assert f"ClusterQueue '{cq}' (LocalQueue 'team'), position 2 of 3" in explained
    assert "next: Kueue holds the job in its ClusterQueue" in explained

    running = ["run-0", "run-1"]
    for done, head in zip(["run-0", "run-1", order[0], order[1], order[2]], order + [None, None]):
        assert sorted(queues.admitted()) == sorted(running)  # never more at once than the quota holds
        finish(jobs, api_client, done)
        running.remove(done)
        if head is None:
            continue
        run_pod(jobs, kubelet, head)  # the head of the queue, and only it, starts
        jobs.wait_phase(head, "Running", timeout=60)
        running.append(head)
        assert sorted(queues.admitted()) == sorted(running)
        rest = order[order.index(head) + 1:]
        for k, name in enumerate(rest, 1):  # the others moved up
            jobs.wait_status(name, f"position {k} of {len(rest)}", lambda s, k=k, n=len(rest): position(s) == (k, n))
    assert not running
    wait_for(lambda: not queues.admitted(), "every Workload finished: the quota free", 30)
    for name in ["run-0", "run-1", *waiting]:
        assert not operator_wrote_suspend(batch.read_namespaced_job(name, jobs.ns))


def test_a_job_whose_local_queue_does_not_exist_says_so_and_starts_once_it_does(queued_jobs, queues, kubelet,
                                                                                why_of):
    jobs = queued_jobs
    jobs.create(queued("lost", "no-such-queue"))
    status = jobs.wait_phase("lost", "Pending", "MissingLocalQueue", timeout=60)
    assert f"LocalQueue 'no-such-queue' does not exist in namespace {jobs.ns}" in status["message"]
    assert jobs.condition("lost", "Failed")["status"] == "False"
    assert jobs.wait_event("lost", "MissingLocalQueue").type == "Warning"
    explained = why_of("lost")
    assert "lost is Pending (waiting to run): MissingLocalQueue" in explained
    assert "next: the LocalQueue of spec.scheduling.queueName does not exist" in explained
    assert not jobs.pods("lost")
    queues.local_queue("no-such-queue", queues.cluster_queue(gpus=1, cpu="2"))
    run_pod(jobs, kubelet, "lost")
    jobs.wait_phase("lost", "Running", timeout=60)
    assert jobs.training_job("lost").metadata.labels[names.LABEL_KUEUE_QUEUE] == "no-such-queue"
