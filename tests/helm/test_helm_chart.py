"""deploy/helm/headstart with the real helm (built from its Go module, tests/helm/build.sh): `helm lint --strict`
clean in both modes, bad values refused naming them, and `helm template --include-crds` (release namespace
headstart-system) renders exactly the objects of `kubectl kustomize` (the control plane's kubectl) for the same
settings, in both modes, object by object, with no Helm-only label or annotation.

Both renderings are compared as kubectl sends them: the chart's output goes through the same `kubectl kustomize`
(a kustomization listing it) before both are parsed. kustomize re-emits folded YAML scalars that hold
more-indented lines with one more line break (deploy/common/admission.yaml's CEL expressions: "...)\\n\\n  .namespace"
where the file says "...)\\n  .namespace"), so parsed directly the two differ by that whitespace and nothing else.
"""

from __future__ import annotations

import copy
import difflib
import os
import subprocess
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "headstart"
RELEASE_NS = "headstart-system"
OPERATOR_IMAGE = ("registry.example/headstart-operator", "0.1.0")
TRAINER_IMAGE = "registry.example/headstart-trainer:0.1.0"
ALLOWLIST = ["registry.example/ml/", "registry.example/headstart-"]
OPERATOR_RESOURCES = {"requests": {"cpu": "200m", "memory": "256Mi"}, "limits": {"memory": "1Gi"}}
CERTGEN_RESOURCES = {"requests": {"cpu": "20m", "memory": "32Mi"}, "limits": {"memory": "64Mi"}}
NAMESPACED = ("--set", "mode=namespaced", "--set", "watchNamespaces={team-a}")

Key = tuple[str, str, str, str]


def kustomize(kubectl: Path, folder: Path) -> str:
    done = subprocess.run([str(kubectl), "kustomize", str(folder)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


def as_kubectl_sends_it(kubectl: Path, rendered: str, folder: Path) -> str:
    """``rendered`` through `kubectl kustomize` (a kustomization that lists it), as deploy/'s objects go."""
    folder.mkdir()
    (folder / "rendered.yaml").write_text(rendered)
    (folder / "kustomization.yaml").write_text("resources: [rendered.yaml]\n")
    return kustomize(kubectl, folder)


def objects(text: str) -> dict[Key, dict]:
    """Every object of a rendering by (apiVersion, kind, namespace, name); a name twice is an error."""
    found: dict[Key, dict] = {}
    for doc in yaml.safe_load_all(text):
        if not doc:
            continue
        meta = doc["metadata"]
        key = (doc["apiVersion"], doc["kind"], meta.get("namespace", ""), meta["name"])
        assert key not in found, f"{key} rendered twice"
        found[key] = doc
    return found


def chart(helm, *args: str) -> str:
    return helm("template", "headstart", str(CHART), "-n", RELEASE_NS, "--include-crds", *args).stdout


def assert_same_objects(expected: dict[Key, dict], got: dict[Key, dict]) -> None:
    only_kustomize, only_chart = sorted(set(expected) - set(got)), sorted(set(got) - set(expected))
    assert not only_kustomize and not only_chart, f"only in kustomize: {only_kustomize}; in the chart: {only_chart}"
    for key, want in expected.items():
        if got[key] != want:
            diff = difflib.unified_diff(yaml.safe_dump(want).splitlines(), yaml.safe_dump(got[key]).splitlines(),
                                        "kustomize", "helm", lineterm="")
            raise AssertionError(f"{key} differs:\n" + "\n".join(diff))


def assert_no_helm_metadata(rendered: dict[Key, dict]) -> None:
    for key, doc in rendered.items():
        meta = {**doc["metadata"].get("labels", {}), **doc["metadata"].get("annotations", {})}
        assert not [k for k in meta if "helm" in k or k == "app.kubernetes.io/managed-by"], key


@pytest.mark.parametrize("mode, folder, args", [
    ("cluster", DEPLOY, ()),
    ("namespaced", DEPLOY / "namespaced", NAMESPACED),
])
def test_the_chart_renders_the_kustomize_objects(helm, control_plane_bins, tmp_path, mode, folder, args):
    kubectl = control_plane_bins["kubectl"]
    expected = objects(kustomize(kubectl, folder))
    got = objects(as_kubectl_sends_it(kubectl, chart(helm, "--set", "namespace.create=true", *args), tmp_path / "c"))
    assert len(expected) >= 16 and ("v1", "Namespace", "", RELEASE_NS) in expected
    assert_same_objects(expected, got)
    assert_no_helm_metadata(got)


def custom_values(mode: str) -> dict:
    """Every value set to something other than its default."""
    return {
        "mode": mode, "watchNamespaces": ["team-a", "team-b"] if mode == "namespaced" else [],
        "namespace": {"create": True},
        "operator": {"image": ":".join(OPERATOR_IMAGE), "pullPolicy": "Always", "resources": OPERATOR_RESOURCES},
        "trainer": {"image": TRAINER_IMAGE, "pullPolicy": "Never"},
        "caches": {"kerasClaim": "keras-cache", "tfdsClaim": "tfds-cache"},
        "admission": {"imageAllowlist": ALLOWLIST},
        "certgen": {"resources": CERTGEN_RESOURCES},
    }


def patch(kind: str, name: str, operations: list[dict]) -> dict:
    return {"target": {"kind": kind, "name": name}, "patch": yaml.safe_dump(operations)}


def team_b_role_binding() -> dict:
    """deploy/namespaced/rbac.yaml's RoleBinding copied for team-b, as its kustomization says to."""
    docs = yaml.safe_load_all((DEPLOY / "namespaced" / "rbac.yaml").read_text())
    binding = copy.deepcopy(next(d for d in docs if d["kind"] == "RoleBinding"))
    binding["metadata"]["namespace"] = "team-b"
    return binding


def custom_overlay(mode: str, folder: Path) -> Path:
    """The same settings as custom_values, as a platform team writes them in kustomize over deploy/."""
    base = DEPLOY / "namespaced" if mode == "namespaced" else DEPLOY
    container = "/spec/template/spec/containers/0"
    operator = [
        {"op": "replace", "path": f"{container}/env/0/value", "value": TRAINER_IMAGE},
        {"op": "replace", "path": f"{container}/env/1/value", "value": "Never"},
        {"op": "add", "path": f"{container}/env/-", "value": {"name": "HEADSTART_KERAS_CACHE_CLAIM",
                                                              "value": "keras-cache"}},
        {"op": "add", "path": f"{container}/env/-", "value": {"name": "HEADSTART_TFDS_CACHE_CLAIM",
                                                              "value": "tfds-cache"}},
        {"op": "replace", "path": f"{container}/imagePullPolicy", "value": "Always"},
        {"op": "replace", "path": f"{container}/resources", "value": OPERATOR_RESOURCES},
    ]
    resources = [os.path.relpath(base, folder)]
    if mode == "namespaced":
        operator.append({"op": "add", "path": f"{container}/args/1", "value": "--namespace=team-b"})
        (folder / "team-b.yaml").write_text(yaml.safe_dump(team_b_role_binding()))
        resources.append("team-b.yaml")
    kustomization = {
        "resources": resources,
        "images": [{"name": "headstart-operator", "newName": OPERATOR_IMAGE[0], "newTag": OPERATOR_IMAGE[1]}],
        "patches": [
            patch("Deployment", "headstart-operator", operator),
            patch("Job", "headstart-certgen", [
                {"op": "replace", "path": f"{container}/imagePullPolicy", "value": "Always"},
                {"op": "replace", "path": f"{container}/resources", "value": CERTGEN_RESOURCES}]),
            patch("ConfigMap", "headstart-admission", [
                {"op": "replace", "path": "/data/imageAllowlist", "value": ",".join(ALLOWLIST)}]),
        ],
    }
    (folder / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    return folder


@pytest.mark.parametrize("mode", ["cluster", "namespaced"])
def test_every_value_lands_where_kustomize_puts_it(helm, control_plane_bins, tmp_path, mode):
    kubectl = control_plane_bins["kubectl"]
    overlay = tmp_path / "overlay"
    overlay.mkdir()
    expected = objects(kustomize(kubectl, custom_overlay(mode, overlay)))
    values = tmp_path / "values.yaml"
    values.write_text(yaml.safe_dump(custom_values(mode)))
    got = objects(as_kubectl_sends_it(kubectl, chart(helm, "-f", str(values)), tmp_path / "c"))
    assert_same_objects(expected, got)
    deployment = got[("apps/v1", "Deployment", RELEASE_NS, "headstart-operator")]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    scope = ["--namespace=team-a", "--namespace=team-b"] if mode == "namespaced" else ["--all-namespaces"]
    assert args[:len(scope)] == scope and not {"--all-namespaces", "--namespace=team-a"} - set(scope) & set(args)


def test_helm_install_leaves_the_namespace_to_the_installer(helm, control_plane_bins, tmp_path):
    """namespace.create is off by default (helm install needs the namespace first); all else is the same."""
    kubectl = control_plane_bins["kubectl"]
    expected = objects(kustomize(kubectl, DEPLOY))
    del expected[("v1", "Namespace", "", RELEASE_NS)]
    assert_same_objects(expected, objects(as_kubectl_sends_it(kubectl, chart(helm), tmp_path / "c")))


@pytest.mark.parametrize("args", [(), NAMESPACED], ids=["cluster", "namespaced"])
def test_helm_lint_is_clean(helm, args):
    done = helm("lint", "--strict", str(CHART), *args)
    assert "1 chart(s) linted, 0 chart(s) failed" in done.stdout, done.stdout
    assert "[WARNING]" not in done.stdout and "[ERROR]" not in done.stdout, done.stdout


def test_another_release_namespace_is_used_throughout(helm):
    rendered = objects(helm("template", "headstart", str(CHART), "-n", "ml-platform", *NAMESPACED).stdout)
    text = yaml.safe_dump(list(rendered.values()))
    assert "headstart-system" not in text
    assert "system:serviceaccount:ml-platform:headstart-operator" in text  # the admission guard's match
    assert {key[2] for key in rendered} == {"", "ml-platform", "team-a"}
    binding = rendered[("rbac.authorization.k8s.io/v1", "RoleBinding", "team-a", "headstart-operator")]
    assert binding["subjects"] == [{"kind": "ServiceAccount", "name": "headstart-operator", "namespace": "ml-platform"}]


@pytest.mark.parametrize("args, names", [
    (("--set", "mode=everywhere"), "/mode"),
    (("--set", "mode=namespaced"), "watchNamespaces: mode=namespaced needs at least one namespace to watch"),
    (("--set", "watchNamespaces={team-a}"), "watchNamespaces: team-a given with mode=cluster"),
    (("--set", "mode=namespaced", "--set", "watchNamespaces={Team_A}"), "/watchNamespaces/0"),
    (("--set", "operator.pullPolicy=Sometimes"), "/operator/pullPolicy"),
    (("--set", "operator.imag=registry.example/op:1"), "imag"),
    (("--set", "caches.kerasClaim=Not A Claim"), "/caches/kerasClaim"),
], ids=["mode", "namespaced-without-namespaces", "namespaces-in-cluster-mode", "bad-namespace", "pull-policy",
        "misspelt", "bad-claim"])
def test_bad_values_are_refused_naming_them(helm, args, names):
    done = helm("template", "headstart", str(CHART), "-n", RELEASE_NS, *args, check=False)
    assert done.returncode != 0 and not done.stdout
    assert names in done.stderr, done.stderr
