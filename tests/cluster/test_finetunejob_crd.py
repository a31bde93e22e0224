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
    local = set((REPO / "examples" / "quickstart").glob("*.yaml"))  # `headstart run`'s: local outputs
    examples = sorted((REPO / "examples").rglob("*.yaml"))
    for path in examples:
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") == "FineTuneJob":
                done = _apply(kubectl, namespace, doc)
                if path in local:
                    assert done.returncode != 0 and "local output would vanish" in done.stderr, path
                else:
                    assert done.returncode == 0, f"{path}: {done.stderr}"
    stored = ftj_crd.get_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, "flowers-xception")
    assert stored["spec"] == SEED["spec"]  # the server added no defaults: GitOps sees no drift


INVALID = REPO / "tests" / "fixtures" / "invalid"
#: Invalid manifests the API server cannot refuse, and why: the models (validate, the operator, the trainer)
#: refuse them (a duplicated key, bytes that are not UTF-8: validate, which reads the text). The splits take a
#: string or a number, which a structural schema cannot type, so CEL cannot see them (the API server says
#: "undefined field" to a rule that reads them).
MODELS_ONLY = {
    "image-folder-string-split.yaml": "splits are untyped for CEL",
    "image-folder-fractions-too-large.yaml": "splits are untyped for CEL",
    "bad-tfds-split.yaml": "splits are untyped for CEL",
    "early-stopping-without-validation.yaml": "splits are untyped for CEL",
    "sweep-without-validation.yaml": "splits are untyped for CEL",
    "duplicate-key.yaml": "kubectl's YAML reading keeps the last of a key given twice: the server sees one",
    "not-utf8.yaml": "kubectl sends a byte that is not UTF-8 as U+FFFD: the server stores 'caf\ufffd photos'",
}
EXPECTED = {}
for _line in (REPO / "tests" / "fixtures" / "invalid.expected").read_text().splitlines():
    EXPECTED.setdefault(_line.removeprefix("tests/fixtures/invalid/").split("[")[0].split(":")[0], _line)


def _server_path(line: str) -> str:
    """The field path of a `headstart validate` line, as the API server writes it."""
    rest = line.split(": ", 1)[1]
    return rest.split(": ", 1)[0] if rest.startswith(("spec", "metadata")) else ""


def test_the_server_refuses_every_mistyped_mutant_as_validate_does(ftj_crd, namespace):
    """`headstart validate` coerces nothing where the CRD has a type; neither does the API server. One mutant
    per field and kind of wrong value (true, '1', 1.5, 7, 'yes'...), sent as a dry run."""
    from spec_mutants import generate

    chosen = {}
    for mutant in generate():
        if mutant.mistyped:
            chosen.setdefault((mutant.path, type(mutant.value), repr(mutant.value)[:3]), mutant)
    assert len(chosen) >= 100
    accepted = []
    for mutant in chosen.values():
        body = copy.deepcopy(mutant.document)
        body["metadata"] = {"name": "mistyped"}
        try:
            ftj_crd.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, dry_run="All")
        except client.ApiException as exc:
            assert exc.status == 422 and mutant.path.split(".")[-1].split("[")[0] in exc.body, \
                (mutant.label, exc.status, exc.body)
            continue
        accepted.append(mutant.label)
    assert not accepted, f"the API server accepted {len(accepted)} mistyped mutants:\n" + "\n".join(accepted[:20])


def test_a_whole_float_is_an_integer_for_both(ftj_crd, namespace):
    """JSON has one number type: 10.0 is an integer to the API server, and to validate; 10.5 to neither."""
    from headstart.api import check_document

    for epochs, accepted in ((10.0, True), (10.5, False)):
        body = copy.deepcopy(SEED)
        body["metadata"] = {"name": "whole"}
        body["spec"]["stages"][1]["epochs"] = epochs
        assert (check_document(body)[0] is not None) is accepted, epochs
        try:
            ftj_crd.create_namespaced_custom_object(GROUP, VERSION, namespace, PLURAL, body, dry_run="All")
        except client.ApiException as exc:
            assert not accepted and exc.status == 422 and "epochs" in exc.body, (epochs, exc.body)
        else:
            assert accepted, f"the API server accepted epochs: {epochs}"


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
    row = table[1].split()
    # the operator, when it runs in this session, writes the phase; the trainer's columns are the patch's
    assert row[0] == "flowers-xception" and row[1] in ("Running", "Pending") and row[2:5] == ["head", "3", "0.875"]


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
