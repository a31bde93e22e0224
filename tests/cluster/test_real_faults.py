"""Faults, for real, on the real node: a training pod killed mid-stage is replaced and the job finishes with
exactly its epochs (resumed from the checkpoint on the volume); bad input fails at once without a retry; a
deadline and a memory limit that is too small are reported as such."""

from __future__ import annotations

import json
import threading

import pytest
from controlplane.waiting import wait_for
from kubernetes import client
from story_support import bind_claim, chown_tree, on_real_node

from headstart.sdk import Client, JobFailed

pytestmark = pytest.mark.timeout(1200)

STAGES = [
    {"name": "head", "trainBase": "none", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}},
    {"name": "tune", "trainBase": "all", "epochs": 6, "optimizer": {"type": "Adam", "learningRate": 0.001}},
]


@pytest.fixture
def workspace(node, node_image, host_path_volume, api_client, namespace):
    """A claim 'work' holding a small digits folder and a base model; the trainer image on the node."""
    from headstart import quickstart as qs

    volume, folder = host_path_volume("1Gi")
    qs.prepare_data(folder, qs.Sizes(source_copies=1, target_per_class=12))
    qs.write_base(folder / "base.keras")
    chown_tree(folder)
    bind_claim(api_client, namespace, "work", volume)
    return folder, node_image("trainer")


def job(name: str, image: str, **spec) -> dict:
    doc = {"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": name},
           "spec": {"baseModel": {"uri": "pvc://work/base.keras"},
                    "dataset": {"imageFolder": {"uri": "pvc://work/data/source"}, "splits": {"validation": 0.2},
                                "batchSize": 64},
                    "stages": STAGES, "output": {"uri": f"pvc://work/models/{name}", "formats": ["keras"]},
                    "resources": {"gpus": 0}}}
    return on_real_node(doc, image, **spec)


def test_a_pod_killed_mid_stage_is_replaced_and_the_job_resumes(operator, workspace, api_client, kubeconfig,
                                                                namespace):
    folder, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    sdk.submit(job("killed", image))
    core = client.CoreV1Api(api_client)
    followed: list[str] = []
    follow_errors: list[BaseException] = []

    def follow() -> None:
        try:
            followed.extend(sdk.logs("killed", follow=True, timeout=900))
        except BaseException as exc:  # reported by the assertion below
            follow_errors.append(exc)

    follower = threading.Thread(target=follow, daemon=True)
    follower.start()  # `headstart logs -f` from the start: it waits for the pod and follows across the restart

    def mid_stage():
        status = sdk.get("killed").status
        return status if status and status.stage == "tune" and (status.epoch or 0) >= 2 else None

    status = wait_for(mid_stage, "epoch 2 of stage tune", 600)
    assert status.epoch < 6
    first = sdk.backend.pods("killed")[-1].metadata.name
    core.delete_namespaced_pod(first, namespace, grace_period_seconds=0)  # as a node failure or preemption would
    done = sdk.wait("killed", timeout=900)
    pods = [p.metadata.name for p in sdk.backend.pods("killed")]
    assert first not in pods and len(pods) == 1  # replaced by the Job controller
    history = json.loads((folder / "models" / "killed" / "metrics.json").read_text())["stages"]
    assert [s["epochs_completed"] for s in history] == [1, 6]
    assert [e["epoch"] for e in history[1]["epochs_history"]] == [1, 2, 3, 4, 5, 6]  # each epoch exactly once
    assert [s.epochs_completed for s in done.status.stages] == [1, 6]
    log = "\n".join(sdk.logs("killed"))
    assert "resuming stage 2 after epoch" in log
    follower.join(timeout=120)
    assert not follower.is_alive(), "following the logs did not end with the job"
    assert not follow_errors, f"following the logs failed: {follow_errors[0]!r}"
    restart = followed.index(f"--- pod {pods[0]} ---")
    assert any(line.startswith("stage 2 tune epoch 2/6") for line in followed[:restart])
    assert any(line.startswith("resuming stage 2 after epoch") for line in followed[restart:])
    assert any(line.startswith("done:") for line in followed[restart:])


def test_bad_input_fails_at_once_without_retries(operator, workspace, kubeconfig, namespace):
    _, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    doc = job("nodata", image, runPolicy={"backoffLimit": 3})
    doc["spec"]["dataset"]["imageFolder"]["uri"] = "pvc://work/data/missing"
    sdk.submit(doc)
    with pytest.raises(JobFailed) as failed:
        sdk.wait("nodata", timeout=600)
    assert failed.value.reason == "BadDataset" and "no folder at" in failed.value.detail
    assert len(sdk.backend.pods("nodata")) == 1  # podFailurePolicy: no retry of a permanent failure


def test_a_deadline_is_reported_as_exceeded(operator, workspace, kubeconfig, namespace):
    _, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    sdk.submit(job("late", image, runPolicy={"activeDeadlineSeconds": 10}))
    with pytest.raises(JobFailed) as failed:
        sdk.wait("late", timeout=300)
    assert failed.value.reason == "DeadlineExceeded"


def test_a_memory_limit_too_small_is_reported_as_oom(operator, workspace, kubeconfig, namespace):
    _, image = workspace
    sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
    sdk.submit(job("tight", image, resources={"gpus": 0, "memory": "200Mi"}, runPolicy={"backoffLimit": 0}))
    with pytest.raises(JobFailed) as failed:
        sdk.wait("tight", timeout=300)
    assert failed.value.reason == "OOMKilled" and "spec.resources.memory" in failed.value.detail
