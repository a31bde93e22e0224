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


INVALID = REPO / "tests" / "fixtures" / "invalid"
#: Invalid manifests the API server cannot refuse, and why: the models (validate, the operator, the trainer)
#: refuse them. The splits take a string or a number, which a structural schema cannot type, so CEL cannot
#: see them (the API server says "undefined field" to a rule that reads them).
MODELS_ONLY = {
    "image-folder-string-split.yaml": "splits are untyped for CEL",
    "image-folder-fractions-too-large.yaml": "splits are untyped for CEL",
    "bad-tfds-split.yaml": "splits are untyped for CEL",
    "early-stopping-without-validation.yaml": "splits are untyped for CEL",
}
EXPECTED = {}
for _line in (REPO / "tests" / "fixtures" / "invalid.expected").read_text().splitlines():
    EXPECTED.setdefault(_line.removeprefix("tests/fixtures/invalid/").split("[")[0].split(":")[0], _line)


def _server_path(line: str) -> str:
    """The field path of a `headstart validate` line, as the API server writes it."""
    rest = line.split(": ", 1)[1]
    return rest.split(": ", 1)[0] if rest.startswith(("spec", "metadata")) else ""


@pytest.mark.parametrize("fixture", sorted(p.name for p in INVALID.glob("*.yaml")))
def test_server_and_models_agree_on_every_invalid_fixture(ftj_crd, kubectl, namespace, fixture):
    done = kubectl("apply", "-n", namespace, "-f", str(INVALID / fixture), check=False)
    if fixture in MODELS_ONLY:
        assert done.returncode == 0, f"the server now refuses {fixture}: drop it from MODELS_ONLY\n{done.stderr}"
        return
    assert done.returncode != 0, f"the API server accepted {fixture}, which validate refuses"
    path = _server_path(EXPECTED[fixture])
    assert path.replace("[", ".").split(".")[-1].rstrip("]") in done.stderr, (EXPECTED[fixture], done.stderr)


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
