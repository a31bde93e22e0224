"""deploy/ installed as a platform team installs it, on the real node: a kustomize overlay that sets the
operator's image (as `kustomize edit set image` writes it), applied with `kubectl apply -k`; the certgen Job
makes the progress endpoint's Secret, the operator's pod starts with it, and a job that names no image runs
the operator's default `headstart-trainer:latest` (IfNotPresent: an offline cluster has no registry), reports
its progress through the Service, succeeds, and `headstart fetch` brings its model from the claim through a
helper pod that pulls that image the same way; the model loads and predicts."""

from __future__ import annotations

import json
import os

import pytest
import yaml
from controlplane.fixtures import ON_REAL_NODE
from story_support import REPO, bind_claim, chown_tree, on_real_node
from typer.testing import CliRunner

from headstart.sdk import Client
from headstart.sdk.cli import app

pytestmark = pytest.mark.timeout(1500)
SYSTEM = "headstart-system"
INSTALLED = ["deployment/headstart-operator", "service/headstart-operator", "job/headstart-certgen",
             "secret/headstart-operator-tls", "serviceaccount/headstart-certgen", "role/headstart-certgen",
             "rolebinding/headstart-certgen"]


def overlay(folder, operator_image: str) -> str:
    """A kustomization over deploy/ (as make cluster installs it): the operator's image set, and the pods of
    deploy/ allowed onto the test's real node (tainted in pytest so that only pods meant for it run there)."""
    name, _, tag = operator_image.rpartition(":")
    placement = [{"op": "add", "path": "/spec/template/spec/tolerations",
                  "value": [dict(t) for t in ON_REAL_NODE["tolerations"]]},
                 {"op": "add", "path": "/spec/template/spec/nodeSelector", "value": dict(ON_REAL_NODE["nodeSelector"])}]
    kustomization = {
        "apiVersion": "kustomize.config.k8s.io/v1beta1", "kind": "Kustomization",
        # kustomize takes a base by a relative path only
        "resources": [os.path.relpath(REPO / "tests" / "controlplane" / "deploy", folder)],
        "images": [{"name": "headstart-operator", "newName": name, "newTag": tag}],
        "patches": [{"target": {"kind": kind, "name": target}, "patch": yaml.safe_dump(placement)}
                    for kind, target in (("Deployment", "headstart-operator"), ("Job", "headstart-certgen"))],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return str(folder)


def test_deploy_installs_an_operator_that_trains_reports_and_fetches(operator, node, node_image, host_path_volume,
                                                                     api_client, kubectl, kubeconfig, namespace,
                                                                     tmp_path):
    from headstart import quickstart as qs

    node_image("trainer")  # tagged headstart-trainer:latest too, the operator's default trainer image
    operator_image = node_image("operator")
    volume, folder = host_path_volume("1Gi")
    qs.prepare_data(folder, qs.Sizes(source_copies=1, target_per_class=12))
    qs.write_base(folder / "base.keras")
    chown_tree(folder)
    bind_claim(api_client, namespace, "work", volume)
    rendered = kubectl("kustomize", overlay(tmp_path / "overlay", operator_image)).stdout
    deployment = next(d for d in yaml.safe_load_all(rendered) if d and d["kind"] == "Deployment")
    assert deployment["spec"]["template"]["spec"]["containers"][0]["image"] == operator_image  # the image set

    operator.stop()  # one operator at a time: the session's leaves the cluster to deploy/'s
    try:
        kubectl("apply", "-k", str(tmp_path / "overlay"))
        kubectl("-n", SYSTEM, "wait", "--for=condition=complete", "job/headstart-certgen", "--timeout=300s",
                timeout=330)
        kubectl("-n", SYSTEM, "rollout", "status", "deployment/headstart-operator", "--timeout=300s", timeout=330)
        doc = on_real_node({"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob",
                            "metadata": {"name": "deployed"},
                            "spec": {"baseModel": {"uri": "pvc://work/base.keras"},
                                     "dataset": {"imageFolder": {"uri": "pvc://work/data/target"},
                                                 "splits": {"validation": 0.2}, "batchSize": 32},
                                     "stages": [{"name": "head", "epochs": 2, "optimizer": {
                                         "type": "Adam", "learningRate": 0.01}}],
                                     "output": {"uri": "pvc://work/models/deployed"},
                                     "resources": {"gpus": 0}}}, "unused")
        del doc["spec"]["image"]  # the operator's default image, headstart-trainer:latest
        sdk = Client(namespace=namespace, kubeconfig=kubeconfig)
        sdk.submit(doc)
        done = sdk.wait("deployed", timeout=900)
        trainer = sdk.backend.batch.read_namespaced_job("deployed", namespace).spec.template.spec.containers[0]
        assert (trainer.image, trainer.image_pull_policy) == ("headstart-trainer:latest", "IfNotPresent")
        assert [s.epochs_completed for s in done.status.stages] == [2]
        # progress reached deploy/'s endpoint: status.epoch comes only from the pod's snapshots (the termination
        # message, the fallback, carries the model, the stages and the final metrics, never an epoch)
        assert (done.status.stage, done.status.epoch) == ("head", 2), done.status
        assert done.status.model.uri == "pvc://work/models/deployed"

        fetched = CliRunner().invoke(app, ["fetch", "deployed", "--to", str(tmp_path / "model"),
                                           "--kubeconfig", str(kubeconfig), "-n", namespace])
        assert fetched.exit_code == 0, fetched.output
    finally:
        logs = kubectl("-n", SYSTEM, "logs", "deployment/headstart-operator", "--tail=40", check=False)
        kubectl("-n", SYSTEM, "delete", *INSTALLED, "--ignore-not-found", "--wait=false")
        operator.start()
    assert "Traceback" not in logs.stdout, logs.stdout
    import keras
    import numpy as np

    model_dir = tmp_path / "model"
    assert json.loads((model_dir / "manifest.json").read_text())["job"] == "deployed"
    model = keras.saving.load_model(model_dir / "model.keras")
    labels = (model_dir / "labels.txt").read_text().split()
    images = np.random.default_rng(0).uniform(0, 255, (3, 32, 32, 3)).astype("float32")
    probabilities = model.predict(images, verbose=0)
    assert probabilities.shape == (3, len(labels))
    assert np.allclose(probabilities.sum(axis=1), 1.0, atol=1e-5)
