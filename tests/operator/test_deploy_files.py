"""deploy/ as files: the Argo CD health check (run in a real Lua), RBAC without wildcards in both install modes
(deploy/ and deploy/namespaced/, which must grant the same verbs), the Deployment's hardening.
(tests/cluster/test_operator_deploy.py and test_install_modes.py apply them to the real API server.)"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]
DEPLOY = REPO / "deploy"
LUA = (DEPLOY / "argocd" / "finetunejob-health.lua").read_text()


def health(obj: dict) -> tuple[str, str]:
    import lupa
    runtime = lupa.LuaRuntime(unpack_returned_tuples=True)

    def to_lua(value):
        if isinstance(value, dict):
            return runtime.table_from({k: to_lua(v) for k, v in value.items()})
        if isinstance(value, list):
            return runtime.table_from([to_lua(v) for v in value])
        return value

    script = runtime.eval(f"function(obj)\n{LUA}\nend")
    result = script(to_lua(obj))
    return result["status"], result["message"]


def ftj(status: dict | None, generation: int = 1) -> dict:
    obj = {"metadata": {"name": "x", "generation": generation}, "spec": {}}
    if status is not None:
        obj["status"] = status
    return obj


@pytest.mark.parametrize("status, expected", [
    (None, "Progressing"),
    ({"phase": "Pending", "reason": "InsufficientGPU", "message": "waiting", "observedGeneration": 1},
     "Progressing"),
    ({"phase": "Running", "observedGeneration": 1}, "Progressing"),
    ({"phase": "Succeeded", "observedGeneration": 1}, "Healthy"),
    ({"phase": "Failed", "reason": "BadDataset", "message": "no folder", "observedGeneration": 1}, "Degraded"),
    ({"phase": "Suspended", "observedGeneration": 1}, "Suspended"),
    ({"phase": "Succeeded", "observedGeneration": 1,
      "conditions": [{"type": "Stalled", "status": "True", "reason": "SpecChangeRefused", "message": "m"}]},
     "Degraded"),
    ({"phase": "Succeeded", "observedGeneration": 0}, "Progressing"),
])
def test_argocd_health_check(status, expected):
    got, message = health(ftj(status))
    assert got == expected, message


def test_argocd_patch_carries_the_same_script():
    patch = yaml.safe_load((DEPLOY / "argocd" / "argocd-cm-patch.yaml").read_text())
    assert patch["data"]["resource.customizations.health.headstart.dev_FineTuneJob"] == LUA


def docs(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((DEPLOY / name).read_text()) if d]


def one(name: str, kind: str, object_name: str | None = None) -> dict:
    return next(d for d in docs(name) if d["kind"] == kind and object_name in (None, d["metadata"]["name"]))


TOKEN_REVIEWS = {"apiGroups": ["authentication.k8s.io"], "resources": ["tokenreviews"], "verbs": ["create"]}
NODES = {"apiGroups": [""], "resources": ["nodes"], "verbs": ["list", "watch"]}
CLUSTER_SCOPED = [NODES, TOKEN_REVIEWS]


@pytest.mark.parametrize("rbac", ["rbac.yaml", "namespaced/rbac.yaml"])
def test_cluster_roles_have_no_wildcards_and_no_delete(rbac):
    for role in (d for d in docs(rbac) if d["kind"] in ("ClusterRole", "Role")):
        for rule in role["rules"]:
            for key in ("apiGroups", "resources", "verbs"):
                assert "*" not in rule[key], rule
            assert "delete" not in rule["verbs"] and "deletecollection" not in rule["verbs"]
            assert not {"escalate", "bind", "impersonate"} & set(rule["verbs"])


def test_namespaced_mode_grants_the_same_verbs_by_namespace():
    """deploy/namespaced/rbac.yaml: deploy/rbac.yaml's rules less the cluster-scoped ones (nodes, TokenReviews),
    bound by a RoleBinding only; those alone cluster-wide. The same ServiceAccount and namespace as deploy/
    (copies: kustomize cannot reach deploy/'s own files from deploy/namespaced/)."""
    cluster_wide = one("rbac.yaml", "ClusterRole")["rules"]
    namespaced = one("namespaced/rbac.yaml", "ClusterRole", "headstart-operator")["rules"]
    assert namespaced == [r for r in cluster_wide if r not in CLUSTER_SCOPED], \
        "deploy/namespaced/rbac.yaml's rules drifted from deploy/rbac.yaml's"
    assert all(r in cluster_wide for r in CLUSTER_SCOPED)
    assert one("namespaced/rbac.yaml", "ClusterRole", "headstart-operator-cluster-scoped")["rules"] == CLUSTER_SCOPED
    bindings = {d["kind"]: d for d in docs("namespaced/rbac.yaml") if d["kind"].endswith("Binding")}
    assert bindings["RoleBinding"]["roleRef"]["name"] == "headstart-operator"
    assert bindings["RoleBinding"]["metadata"]["namespace"] == "team-a"
    assert bindings["ClusterRoleBinding"]["roleRef"]["name"] == "headstart-operator-cluster-scoped"
    assert bindings["RoleBinding"]["subjects"] == bindings["ClusterRoleBinding"]["subjects"] == \
        one("rbac.yaml", "ClusterRoleBinding")["subjects"]
    assert one("namespaced/rbac.yaml", "ServiceAccount") == one("rbac.yaml", "ServiceAccount")
    assert docs("namespaced/namespace.yaml") == docs("namespace.yaml")


def test_deployment_is_hardened():
    dep = docs("common/deployment.yaml")[0]
    spec = dep["spec"]
    assert spec["replicas"] == 1 and spec["strategy"] == {"type": "Recreate"}
    pod = spec["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    c = pod["containers"][0]
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["allowPrivilegeEscalation"] is False
    assert c["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert c["resources"]["requests"]
    assert c["command"] == ["python", "-m", "headstart.operator"]


@pytest.mark.parametrize("folder, parts", [
    ("", {"namespace.yaml", "crds", "rbac.yaml", "common"}),
    ("namespaced", {"namespace.yaml", "../crds", "rbac.yaml", "../common"}),
    ("common", {"admission.yaml", "certgen.yaml", "deployment.yaml", "service.yaml"}),
])
def test_kustomizations_list_every_manifest(folder, parts):
    kust = yaml.safe_load((DEPLOY / folder / "kustomization.yaml").read_text())
    assert set(kust["resources"]) == parts
    on_disk = {p.name for p in (DEPLOY / folder).glob("*.yaml")} - {"kustomization.yaml"}
    assert on_disk <= set(kust["resources"])


def test_the_crd_folder_is_a_part_that_kubectl_apply_f_reads_as_the_crd_alone():
    assert sorted(p.name for p in (DEPLOY / "crds").iterdir()) == ["Kustomization", "headstart.dev_finetunejobs.yaml"]
    assert yaml.safe_load((DEPLOY / "crds" / "Kustomization").read_text())["resources"] == [
        "headstart.dev_finetunejobs.yaml"]


def test_namespaced_mode_runs_the_operator_on_its_namespace():
    kust = yaml.safe_load((DEPLOY / "namespaced" / "kustomization.yaml").read_text())
    (only,) = kust["patches"]
    assert only["target"] == {"kind": "Deployment", "name": "headstart-operator"}
    assert yaml.safe_load(only["patch"]) == [
        {"op": "test", "path": "/spec/template/spec/containers/0/args/0", "value": "--all-namespaces"},
        {"op": "replace", "path": "/spec/template/spec/containers/0/args/0", "value": "--namespace=team-a"}]
    assert docs("common/deployment.yaml")[0]["spec"]["template"]["spec"]["containers"][0]["args"][0] == \
        "--all-namespaces"


def test_the_operator_creates_only_jobs_and_reads_no_secret():
    role = next(d for d in docs("rbac.yaml") if d["kind"] == "ClusterRole")
    creates = {(g, r) for rule in role["rules"] if "create" in rule["verbs"]
               for g in rule["apiGroups"] for r in rule["resources"]}
    assert creates == {("batch", "jobs"), ("authentication.k8s.io", "tokenreviews"), ("", "events")}
    assert not any("secrets" in rule["resources"] for rule in role["rules"])


def test_the_endpoint_is_served_with_the_secret_certgen_makes_once():
    dep = docs("common/deployment.yaml")[0]
    pod = dep["spec"]["template"]["spec"]
    tls = next(v for v in pod["volumes"] if v["name"] == "tls")
    c = pod["containers"][0]
    assert {"name": "progress", "containerPort": 8443} in c["ports"]
    assert "--progress-port=8443" in c["args"]
    service = docs("common/service.yaml")[0]
    assert service["spec"]["ports"][0]["targetPort"] == "progress"
    assert service["spec"]["selector"] == dep["spec"]["selector"]["matchLabels"]
    certgen = {d["kind"]: d for d in docs("common/certgen.yaml")}
    job_args = certgen["Job"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert f"--secret={tls['secret']['secretName']}" in job_args
    url = next(a for a in c["args"] if a.startswith("--progress-url=")).split("//", 1)[1].split(":")[0]
    assert f"--host={url}" in job_args  # the certificate names the host pods use
    assert certgen["Role"]["rules"] == [
        {"apiGroups": [""], "resources": ["secrets"], "verbs": ["create"]},
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["headstart-operator-tls"], "verbs": ["get"]}]
    sc = certgen["Job"]["spec"]["template"]["spec"]["containers"][0]["securityContext"]
    assert sc["readOnlyRootFilesystem"] is True and sc["allowPrivilegeEscalation"] is False


def test_each_admission_rule_checks_at_most_two_rights():
    """The API server lets one CEL expression spend two authorization checks, and one request ten million
    units: the guard checks every Secret a job may name (MAX_SECRET_REFERENCES) in pairs, each claim alone."""
    from headstart.api.job import MAX_SECRET_REFERENCES

    policy = next(d for d in docs("common/admission.yaml") if d["kind"] == "ValidatingAdmissionPolicy"
                  and d["metadata"]["name"] == "headstart-finetunejobs")
    checks = [v["expression"].count(".check(") for v in policy["spec"]["validations"]]
    assert max(checks) <= 2 and sum(checks) * 350_000 <= 10_000_000
    secret_rules = [v for v in policy["spec"]["validations"] if "variables.secrets[" in v["expression"]]
    covered = max(int(i) for v in secret_rules for i in __import__("re").findall(r"secrets\[(\d+)\]", v["expression"]))
    assert covered + 1 == MAX_SECRET_REFERENCES
