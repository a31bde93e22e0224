"""The whole story on the real node: the operator under its own RBAC, the trainer image built here, pods that
really train and report their progress to the operator's endpoint, models on a PersistentVolume.

1. The quickstart through Kubernetes: its data on a claim, the three cluster jobs applied with kubectl (the
   transfer job's fromJob resolved by the operator), the transferred model equal to what `headstart run`
   trains from the same spec and seed.
2. As a user tells it: `headstart init` -> `submit` -> `watch` shows the stages -> Succeeded -> `logs` ->
   `fetch` (through a helper pod reading the claim) -> load the model and predict.
"""

from __future__ import annotations

import json
import time

import pytest
import yaml
from controlplane.waiting import wait_for
from story_support import bind_claim, chown_tree, on_real_node, quickstart_jobs, sha256_of
from typer.testing import CliRunner

from headstart.sdk import Client
from headstart.sdk.cli import app

pytestmark = pytest.mark.timeout(1800)


@pytest.fixture(scope="module")
def trainer_image(node_image) -> str:
    return node_image("trainer")


def test_the_quickstart_through_kubernetes(reachable_operator, node, trainer_image, host_path_volume, api_client,
                                           kubectl, kubeconfig, namespace, tmp_path):
    from headstart import quickstart as qs

    started = time.monotonic()
    volume, folder = host_path_volume("2Gi")
    sizes = qs.Sizes.tiny()
    qs.prepare(folder, sizes)
    chown_tree(folder)
    bind_claim(api_client, namespace, "quickstart", volume)
    jobs = quickstart_jobs(trainer_image, sizes.epoch_scale, 1 - sizes.train_per_class / sizes.target_per_class)
    manifests = tmp_path / "quickstart.yaml"
    manifests.write_text(yaml.safe_dump_all(jobs.values()))
    kubectl("apply", "-n", namespace, "-f", str(manifests))  # in any order: digits-transfer waits for its base

    client = Client(namespace=namespace, kubeconfig=kubeconfig)
    live: dict[str, set] = {name: set() for name in jobs}

    def seen(job) -> None:
        if job.status and job.status.phase and job.status.phase.value == "Running" and job.status.stage:
            live[job.name].add((job.status.stage, job.status.epoch))

    done = {name: client.wait(name, timeout=1500, callback=seen) for name in jobs}
    cluster_seconds = time.monotonic() - started

    for name, job in done.items():
        status = job.status
        spec_stages = jobs[name]["spec"]["stages"]
        assert [s.name for s in status.stages] == [s["name"] for s in spec_stages], name
        assert [s.epochs_completed for s in status.stages] == [s["epochs"] for s in spec_stages], name
        assert status.stage == spec_stages[-1]["name"] and status.epoch == spec_stages[-1]["epochs"]
        assert "loss" in status.metrics
        output = folder / "runs" / name
        assert status.model.uri == f"pvc://quickstart/runs/{name}"
        assert status.model.sha256 == sha256_of(output / "manifest.json")
        raw = client.backend.get_raw(name)
        writers = {m["manager"] for m in raw["metadata"]["managedFields"] if m.get("subresource") == "status"}
        assert writers == {"headstart-operator"}, writers  # the pod reports to the operator, which writes
    # the first job waited for was watched from its start: its stage and epochs showed while it ran
    assert len(live["digits-source"]) >= 2, live
    assert "test_accuracy" in done["digits-transfer"].status.metrics
    logs = kubectl("logs", "-n", namespace, "job/digits-transfer").stdout
    assert "stage 1 head epoch 1/" in logs and "done:" in logs

    # the same spec and seed through `headstart run`: the same model
    from headstart.api import FineTuneJob
    from headstart.trainer import run_job

    local = jobs["digits-transfer"]
    local["spec"]["dataset"]["imageFolder"]["uri"] = str(folder / "data" / "target")
    local_started = time.monotonic()
    result = run_job(FineTuneJob.model_validate(local), str(tmp_path / "local-transfer"),
                     resolve_from_job=lambda upstream: str(folder / "runs" / upstream))
    local_seconds = time.monotonic() - local_started
    cluster_metrics = json.loads((folder / "runs" / "digits-transfer" / "metrics.json").read_text())["final"]
    assert result.metrics["test_accuracy"] == pytest.approx(cluster_metrics["test_accuracy"], abs=1e-6)
    print(f"\nquickstart (reduced) through Kubernetes: {cluster_seconds:.0f}s for the three jobs; "
          f"digits-transfer alone through headstart run: {local_seconds:.0f}s; test accuracy "
          f"{cluster_metrics['test_accuracy']:.4f} in both")


def test_the_story_as_a_user_tells_it(reachable_operator, node, trainer_image, host_path_volume, api_client,
                                      kubeconfig, namespace, tmp_path):
    from headstart import quickstart as qs

    volume, folder = host_path_volume("1Gi")
    qs.prepare_data(folder, qs.Sizes(source_copies=1, target_per_class=12))
    qs.write_base(folder / "base.keras")
    chown_tree(folder)
    bind_claim(api_client, namespace, "work", volume)
    runner = CliRunner()

    def headstart(*args: str):
        result = runner.invoke(app, [*args, "--kubeconfig", str(kubeconfig), "-n", namespace])
        assert result.exit_code == 0, f"headstart {' '.join(args)}: {result.output}"
        return result

    created = runner.invoke(app, ["init", "digits", "--base", "pvc://work/base.keras", "--dataset",
                                  "pvc://work/data/target", "--output-uri", "pvc://work/models/digits", "--gpus", "0",
                                  "--head-epochs", "2", "--finetune-epochs", "1", "-f", str(tmp_path / "job.yaml")])
    assert created.exit_code == 0, created.output
    doc = yaml.safe_load((tmp_path / "job.yaml").read_text())
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(on_real_node(doc, trainer_image)))  # this cluster's node

    assert headstart("submit", "-f", str(tmp_path / "job.yaml")).stdout.strip() == "digits"
    watched = headstart("watch", "digits", "--timeout", "900")
    assert watched.stdout.startswith("digits Succeeded: pvc://work/models/digits")
    assert "stage 1 head" in watched.stderr and "stage 2 finetune" in watched.stderr
    listed = headstart("list").stdout.splitlines()
    assert listed[-1].split()[:2] == ["digits", "Succeeded"]
    log = headstart("logs", "digits").stdout
    assert "stage 2 finetune epoch 1/1" in log
    followed = list(Client(namespace=namespace, kubeconfig=kubeconfig).logs("digits", follow=True, timeout=60))
    assert any(line.startswith("done:") for line in followed)  # a finished job: read to the end, then stop
    why = headstart("why", "digits").stdout
    assert why.startswith("digits is Succeeded (done: the model is written)")

    fetched = headstart("fetch", "digits", "--to", str(tmp_path / "model")).stdout.strip()
    model_dir = tmp_path / "model"
    assert fetched == str(model_dir)
    assert json.loads((model_dir / "manifest.json").read_text())["job"] == "digits"
    wait_for(lambda: not [p for p in client_pods(api_client, namespace) if "fetch" in p],
             "the fetch helper pod to be gone", 60)

    import keras
    import numpy as np

    model = keras.saving.load_model(model_dir / "model.keras")
    labels = (model_dir / "labels.txt").read_text().split()
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (3, len(labels)) == (3, 10)
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)


def client_pods(api, namespace: str) -> list[str]:
    from kubernetes import client

    return [p.metadata.name for p in client.CoreV1Api(api).list_namespaced_pod(namespace).items]
