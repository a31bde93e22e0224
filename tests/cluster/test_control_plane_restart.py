"""The API server and etcd stop for 60 s and start again while 50 jobs run on the fake nodes and one trains on
the real node (evicted once before, through the Eviction API, with no retry allowed), and while some of them
end: the operator (the same process), the trainer, the controllers and
the nodes reconnect; every job ends in its right phase with its model; no child is made twice.

The transitions that fall into the outage (pods that ended just before it, the real trainer's progress and
end) reach the status after it, through kopf's watches that list again, the periodic resync, and the model
in the termination message when the trainer's last snapshot could not be delivered."""

from __future__ import annotations

import json
import time

import pytest
from controlplane.waiting import wait_for
from kubernetes import client
from operator_support import Jobs, finish_pod, job_manifest
from story_support import STAGES, job

from headstart.api.exitcodes import ExitCode
from headstart.sdk import Client

pytestmark = pytest.mark.timeout(1500)

FAKE = 50
OUTAGE_SECONDS = 60
#: The real job's long stage: the outage starts as it begins, so it trains through (and may end in) the outage.
REAL_STAGES = [STAGES[0], {**STAGES[1], "epochs": 30}]
#: How the fake jobs end: before the outage (their last transitions fall into it) or after it.
ENDINGS = {**{i: ("before", 0) for i in range(0, 10)}, **{i: ("before", ExitCode.DATASET) for i in range(10, 15)},
           **{i: ("after", 0) for i in range(15, 40)}, **{i: ("after", ExitCode.DATASET) for i in range(40, FAKE)}}


def fake(i: int) -> str:
    return f"fake-{i:02d}"


def end_fake(api_client: client.ApiClient, jobs: Jobs, i: int, pods: dict[str, str]) -> None:
    code = ENDINGS[i][1]
    message = {"model": model_of(i)} if code == 0 else {"error": "dataset.imageFolder: no folder at s3://data/photos"}
    finish_pod(api_client, jobs.ns, pods[fake(i)], code, json.dumps(message))


def model_of(i: int) -> dict:
    return {"uri": f"s3://models/{fake(i)}", "sha256": f"{i:064x}", "formats": ["keras"], "classNames": ["a", "b"]}


def api_answers(api_client: client.ApiClient) -> bool:
    client.CoreV1Api(api_client).list_namespace(limit=1, _request_timeout=5)
    return True


def test_the_api_server_and_etcd_restart_while_jobs_run_and_end(control_plane, reachable_operator, operator,
                                                                  workspace, kubelet, api_client, kubeconfig,
                                                                  namespace):
    folder, image = workspace
    jobs = Jobs(api_client, namespace)
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    for i in range(FAKE):
        jobs.create(job_manifest(fake(i)))
    pods = {}
    for i in range(FAKE):
        pod = jobs.live_pod(fake(i), timeout=120).metadata.name
        kubelet.wait_scheduled(namespace, pod)
        kubelet.set_phase(namespace, pod, "Running")
        pods[fake(i)] = pod
    for i in range(FAKE):
        jobs.wait_phase(fake(i), "Running", timeout=120)
    # no retry allowed: an eviction must not count against it
    sdk.submit(job("real", image, stages=REAL_STAGES, runPolicy={"backoffLimit": 0}))
    # evicted (the Eviction API, as `kubectl drain` asks) once its long stage has a checkpoint: it stops
    # gracefully and its replacement resumes; the outage comes while the replacement trains
    jobs.wait_status("real", "an epoch of stage 2", lambda s: s.get("stageIndex") == 1 and s.get("epoch"),
                     timeout=600)
    first = jobs.live_pod("real").metadata.name
    client.CoreV1Api(api_client).create_namespaced_pod_eviction(first, namespace, client.V1Eviction(
        metadata=client.V1ObjectMeta(name=first, namespace=namespace)))
    wait_for(lambda: [p for p in jobs.pods("real") if p.metadata.name != first and p.status.phase == "Running"],
             "the evicted pod's replacement running", 300)
    jobs.wait_status("real", "the replacement in stage 2", lambda s: s.get("stageIndex") == 1 and s.get("epoch"),
                     timeout=300)
    for i, (when, _) in ENDINGS.items():
        if when == "before":
            end_fake(api_client, jobs, i, pods)
    pid, log_before = operator.proc.pid, operator.log_path.stat().st_size

    control_plane.stop_storage_and_api()
    stopped = time.monotonic()
    try:
        time.sleep(OUTAGE_SECONDS)
        assert operator.proc is not None and operator.proc.poll() is None, "the operator exited without its API"
    finally:
        control_plane.start_storage_and_api()
    outage = time.monotonic() - stopped
    wait_for(lambda: api_answers(api_client), "the API server answering again", 60, retry_on=(Exception,))

    for i, (when, _) in ENDINGS.items():
        if when == "after":
            end_fake(api_client, jobs, i, pods)
    for i, (_, code) in ENDINGS.items():
        if code == 0:
            done = jobs.wait_phase(fake(i), "Succeeded", timeout=180)
            assert done["model"] == model_of(i), fake(i)
        else:
            jobs.wait_phase(fake(i), "Failed", "BadDataset", timeout=180)
    real = sdk.wait("real", timeout=900)
    assert real.status.model is not None and real.status.model.uri == "pvc://work/models/real"
    history = json.loads((folder / "models" / "real" / "metrics.json").read_text())["stages"]
    assert [s["epochs_completed"] for s in history] == [s["epochs"] for s in REAL_STAGES]
    assert [s.epochs_completed for s in real.status.stages] == [s["epochs"] for s in REAL_STAGES]
    tune = history[1]["epochs_history"]
    assert [e["epoch"] for e in tune] == list(range(1, REAL_STAGES[1]["epochs"] + 1))  # each epoch once
    assert first not in [p.metadata.name for p in jobs.pods("real")]
    assert "resuming " in "\n".join(sdk.logs("real"))  # the replacement resumed (mid-epoch, or at an epoch's end)

    # no child made twice: one Job per FineTuneJob, owned by it; one pod per fake job (none was replaced)
    owners = {item["metadata"]["name"]: item["metadata"]["uid"] for item in jobs.custom.list_namespaced_custom_object(
        "headstart.dev", "v1alpha1", namespace, "finetunejobs")["items"]}
    children = jobs.batch.list_namespaced_job(namespace).items
    assert sorted(j.metadata.name for j in children) == sorted(owners)
    assert all([r.uid for r in j.metadata.owner_references] == [owners[j.metadata.name]] for j in children)
    assert all(len(jobs.pods(fake(i))) == 1 for i in range(FAKE))
    # the same operator process throughout, and no handler gave up for good
    assert operator.proc is not None and operator.proc.pid == pid and operator.proc.poll() is None
    with open(operator.log_path, "rb") as log:
        log.seek(log_before)
        after = log.read().decode(errors="replace")
    assert "failed permanently" not in after, after[-3000:]
    assert outage >= OUTAGE_SECONDS
    # the nodes are back, for the tests that come after: every node Ready, no taint the controller put on them
    core = client.CoreV1Api(api_client)

    def not_back() -> list[str]:
        return [n.metadata.name for n in core.list_node().items
                if not any(c.type == "Ready" and c.status == "True" for c in n.status.conditions or [])
                or any(t.key.startswith("node.kubernetes.io/") for t in n.spec.taints or [])]

    wait_for(lambda: not not_back(), "every node Ready and untainted again", 120)
