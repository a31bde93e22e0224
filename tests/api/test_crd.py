"""The CRD is generated from the models, committed, and a valid structural schema."""

from __future__ import annotations

from pathlib import Path

import yaml

from headstart.api.crd import crd, crd_yaml

REPO = Path(__file__).resolve().parents[2]
COMMITTED = REPO / "deploy" / "crds" / "headstart.dev_finetunejobs.yaml"
IN_THE_CHART = REPO / "deploy" / "helm" / "headstart" / "crds" / "headstart.dev_finetunejobs.yaml"
# Keywords a structural schema must not use (apiextensions' structural-schema rules).
FORBIDDEN = {"$ref", "definitions", "$defs", "allOf", "oneOf", "anyOf", "not", "const", "title",
             "default", "examples", "uniqueItems", "patternProperties", "dependencies"}


def test_committed_crd_matches_the_models():
    assert COMMITTED.read_text() == crd_yaml(), (
        "deploy/crds/headstart.dev_finetunejobs.yaml drifted from headstart.api; regenerate it with `make crd`")


def test_the_helm_charts_crd_is_the_same_file():
    assert IN_THE_CHART.read_text() == crd_yaml(), (
        "deploy/helm/headstart/crds/headstart.dev_finetunejobs.yaml drifted from headstart.api; regenerate it "
        "with `make crd` (it writes both)")


def test_headstart_crd_prints_it(cli):
    proc = cli("crd")
    assert proc.returncode == 0
    assert proc.stdout == COMMITTED.read_text()


def _walk(node, path="$"):
    yield path, node
    for key, sub in (node.get("properties") or {}).items():
        yield from _walk(sub, f"{path}.{key}")
    if isinstance(node.get("items"), dict):
        yield from _walk(node["items"], f"{path}[]")
    if isinstance(node.get("additionalProperties"), dict):
        yield from _walk(node["additionalProperties"], f"{path}{{}}")


def test_schema_is_structural():
    version = crd()["spec"]["versions"][0]
    schema = version["schema"]["openAPIV3Schema"]
    seen = 0
    for path, node in _walk(schema):
        seen += 1
        assert not FORBIDDEN & node.keys(), f"{path} uses {FORBIDDEN & node.keys()}"
        assert "type" in node or node.get("x-kubernetes-preserve-unknown-fields") or node.get(
            "x-kubernetes-int-or-string"), f"{path} has no type"
        if node.get("type") == "object" and "additionalProperties" in node:
            assert "properties" not in node, path
        for bound in ("exclusiveMinimum", "exclusiveMaximum"):
            if bound in node:
                assert node[bound] is True, path
    assert seen > 60
    assert schema["properties"]["metadata"] == {"type": "object"}


def test_names_columns_and_subresource():
    spec = crd()["spec"]
    assert spec["group"] == "headstart.dev"
    assert spec["names"]["kind"] == "FineTuneJob"
    assert spec["names"]["plural"] == "finetunejobs"
    assert spec["names"]["shortNames"] == ["ftj"]
    version = spec["versions"][0]
    assert version["name"] == "v1alpha1" and version["subresources"] == {"status": {}}
    assert [c["name"].upper() for c in version["additionalPrinterColumns"]] == [
        "PHASE", "STAGE", "EPOCH", "VAL-ACC", "AGE"]


def test_descriptions_make_kubectl_explain_useful():
    spec = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]["properties"]["spec"]
    stages = spec["properties"]["stages"]
    assert "schedule" in stages["description"]
    stage = stages["items"]["properties"]
    for field in ("name", "trainBase", "epochs", "optimizer"):
        assert stage[field].get("description"), field
    assert "learning rate" in stage["optimizer"]["properties"]["learningRate"]["description"].lower()


def test_no_defaults_in_the_crd_so_gitops_sees_no_drift():
    text = yaml.safe_dump(crd())
    assert "default:" not in text


def test_cel_rules_present():
    text = COMMITTED.read_text()
    assert "x-kubernetes-validations" in text
    schema = crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    rules = [r["rule"] for r in schema["x-kubernetes-validations"]]
    assert any("fromJob" in r and "metadata.name" in r for r in rules)
    base = schema["properties"]["spec"]["properties"]["baseModel"]
    assert base["x-kubernetes-validations"]
    assert "Xception" in base["properties"]["application"]["enum"]
