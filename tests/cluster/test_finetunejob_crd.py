"""The generated FineTuneJob CRD on a real kube-apiserver: served, explained, CEL rules enforced."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
import yaml
from controlplane.waiting import wait_for
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
CRD_FILE = REPO / "deploy" / "crds" / "headstart.dev_finetunejobs.yaml"
SEED = yaml.safe_load((REPO / "examples" / "flowers-xception.yaml").read_text())
GROUP, VERSION, PLURAL = "headstart.dev", "v1alpha1", "finetunejobs"


@pytest.fixture(scope="module")
def ftj_crd(api_client, kubectl):
    kubectl("apply", "-f", str(CRD_FILE))
    ext = client.ApiextensionsV1Api(api_client)

    def established() -> bool:
        conds = ext.read_custom_resource_definition(f"{PLURAL}.{GROUP}").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    wait_for(established, "FineTuneJob CRD Established", 30)
    custom = client.CustomObjectsApi(api_client)
    wait_for(lambda: custom.list_cluster_custom_object(GROUP, VERSION, PLURAL) is not None, "ftj served", 30)
    return custom


def _apply(kubectl, namespace: str, doc: dict, *extra: str):
    return kubectl("apply", "-n", namespace, "-f", "-", *extra, input=json.dumps(doc), check=False)


def test_every_example_is_accepted_and_stored_without_defaults(ftj_crd, kubectl, namespace):
    examples = sorted((REPO / "examples").rglob("*.yaml"))
    for path in examples:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "FineTuneJob":
                done = _apply(kubectl, namespace, doc)
                assert done.returncode == 0, f"{path}: {done.stderr}"
    stored = ftj_crd.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "flowers-xception")
    assert stored["spec"] == SEED["spec"]  # the server added no defaults: GitOps sees no drift


@pytest.mark.parametrize("mutate, expect", [
    (lambda s: s["baseModel"].update(uri="s3://b/base.keras"), "give exactly one of application, uri or fromJob"),
    (lambda s: s["baseModel"].update(application="Xceptoin"), "spec.baseModel.application"),
    (lambda s: s.update(baseModel={"fromJob": "flowers-xception"}), "cannot start from its own output"),
    (lambda s: s["dataset"].pop("tfds"), "give exactly one of tfds or imageFolder"),
    (lambda s: s["stages"][1].update(name="head"), "stage names must be unique"),
    (lambda s: s["stages"][0].update(epochs=0), "spec.stages[0].epochs"),
    (lambda s: s["stages"][1]["optimizer"].update(learningRate=0), "spec.stages[1].optimizer.learningRate"),
    (lambda s: s["stages"][1].update(trainBase="some"), "spec.stages[1].trainBase"),
    (lambda s: s.update(stages=[]), "spec.stages"),
    (lambda s: s["stages"][0].update(epoch=3), 'unknown field "spec.stages[0].epoch"'),
])
def test_server_rejects_what_validate_rejects(ftj_crd, kubectl, namespace, mutate, expect):
    doc = copy.deepcopy(SEED)
    mutate(doc["spec"])
    done = _apply(kubectl, namespace, doc)
    assert done.returncode != 0, "the API server accepted an invalid FineTuneJob"
    assert expect in done.stderr, done.stderr


def test_image_folder_fractions_are_accepted(ftj_crd, kubectl, namespace):
    doc = yaml.safe_load((REPO / "examples" / "own-base-cut.yaml").read_text())
    assert _apply(kubectl, namespace, doc).returncode == 0
    stored = ftj_crd.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, doc["metadata"]["name"])
    assert stored["spec"]["dataset"]["splits"] == {"validation": 0.2, "test": 0.1}


def test_kubectl_explain_and_printer_columns(ftj_crd, kubectl, namespace):
    explain = kubectl("explain", "finetunejob.spec.stages.trainBase")
    assert "top:N" in explain.stdout
    explain = kubectl("explain", "ftj.spec.stages")
    assert "schedule" in explain.stdout
    assert _apply(kubectl, namespace, SEED).returncode == 0
    status = {"phase": "Running", "stage": "head", "epoch": 3, "metrics": {"val_accuracy": 0.875}}
    ftj_crd.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "flowers-xception", {"status": status})
    table = kubectl("get", "ftj", "-n", namespace).stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "STAGE", "EPOCH", "VAL-ACC", "AGE"]
    assert table[1].split()[:5] == ["flowers-xception", "Running", "head", "3", "0.875"]


def test_status_is_a_subresource(ftj_crd, namespace):
    body = copy.deepcopy(SEED)
    body["status"] = {"phase": "Succeeded"}
    created = ftj_crd.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body)
    assert "status" not in created or not created["status"].get("phase")  # ignored on the main resource
    ftj_crd.patch_namespaced_custom_object_status(
        GROUP, VERSION, namespace, PLURAL, "flowers-xception", {"status": {"phase": "Pending"}})
    got = ftj_crd.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "flowers-xception")
    assert got["status"]["phase"] == "Pending"
    assert got["spec"] == SEED["spec"]
