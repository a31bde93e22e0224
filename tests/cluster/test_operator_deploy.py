"""deploy/ on the real API server: `kubectl apply -k deploy/` is accepted whole, and
the operator's ClusterRole grants what it uses and no more; with its own token, cluster-wide, it reads no Secret,
binds no role and makes no hostPath Job. (The namespaced mode applied for real: test_install_modes.py.)"""

from __future__ import annotations

import json

import pytest
from kubernetes import client
from operator_support import OPERATOR_NS, OPERATOR_SA, REPO, operator_job, with_host_path


def test_apply_k_deploy_is_accepted_by_the_api_server(operator_rbac, kubectl):
    # The namespace and RBAC are applied for real by the fixture; the whole kustomization goes through the
    # server's validation and admission (Pod Security "restricted" of the namespace included) as a dry run,
    # so no operator pod competes with the one the tests run.
    done = kubectl("apply", "-k", str(REPO / "deploy"), "--dry-run=server")
    for line in ("namespace/headstart-system", "customresourcedefinition.apiextensions.k8s.io/finetunejobs",
                 "serviceaccount/headstart-operator", "clusterrole.rbac.authorization.k8s.io/headstart-operator",
                 "clusterrolebinding.rbac.authorization.k8s.io/headstart-operator",
                 "deployment.apps/headstart-operator", "service/headstart-operator", "job.batch/headstart-certgen",
                 "role.rbac.authorization.k8s.io/headstart-certgen"):
        assert line in done.stdout, done.stdout
    assert "Warning" not in done.stderr, done.stderr  # no Pod Security warning for the operator's pod


def test_the_operators_own_token_cluster_wide(operator, kubectl, namespace):
    """The token the session operator runs on (cluster-wide mode): a Job as it builds them is admitted, the same
    Job with a hostPath is refused by the admission guard; it may not read Secrets nor create role bindings."""
    mine = ("--kubeconfig", str(operator.kubeconfig), "-n", namespace)

    def create(doc):
        return kubectl(*mine, "create", "--dry-run=server", "-f", "-", input=json.dumps(doc), check=False)

    admitted = create(operator_job(namespace))
    assert admitted.returncode == 0, admitted.stderr
    refused = create(with_host_path(operator_job(namespace)))
    assert refused.returncode != 0
    assert "a Job of the Headstart operator mounts no hostPath volume" in refused.stderr, refused.stderr
    for args in (("get", "secrets"), ("list", "secrets"), ("create", "rolebindings"), ("create", "roles"),
                 ("create", "clusterrolebindings")):
        can = kubectl(*mine, "auth", "can-i", *args, check=False)
        assert can.stdout.strip() == "no", (args, can.stdout, can.stderr)


@pytest.mark.parametrize("verb, group, resource, sub, allowed", [
    ("watch", "headstart.dev", "finetunejobs", "", True),
    ("patch", "headstart.dev", "finetunejobs", "status", True),
    ("update", "headstart.dev", "finetunejobs", "", False),
    ("delete", "headstart.dev", "finetunejobs", "", False),
    ("create", "batch", "jobs", "", True),
    ("delete", "batch", "jobs", "", False),
    ("list", "", "pods", "", True),
    ("delete", "", "pods", "", False),
    ("get", "", "secrets", "", False),
    ("list", "", "secrets", "", False),
    ("create", "", "configmaps", "", False),
    ("get", "", "configmaps", "", False),
    ("create", "", "serviceaccounts", "", False),
    ("create", "", "serviceaccounts", "token", False),
    ("create", "rbac.authorization.k8s.io", "roles", "", False),
    ("create", "rbac.authorization.k8s.io", "rolebindings", "", False),
    ("create", "rbac.authorization.k8s.io", "clusterroles", "", False),
    ("escalate", "rbac.authorization.k8s.io", "roles", "", False),
    ("create", "", "pods", "", False),
    ("create", "authentication.k8s.io", "tokenreviews", "", True),
    ("update", "headstart.dev", "finetunejobs", "finalizers", True),
])
def test_the_operators_permissions(operator_rbac, api_client, verb, group, resource, sub, allowed):
    review = client.AuthorizationV1Api(api_client).create_subject_access_review({"spec": {
        "user": f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}",
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{OPERATOR_NS}", "system:authenticated"],
        "resourceAttributes": {"namespace": "team-a", "verb": verb, "group": group, "resource": resource,
                               "subresource": sub}}})
    assert review.status.allowed is allowed, (verb, group, resource, sub)


def test_the_readmes_install_overlay_sets_both_images(control_plane_bins, tmp_path):
    """The overlay README's "Install in your cluster" shows, as written there, rendered by kubectl's kustomize."""
    import os
    import re
    import subprocess

    import yaml

    readme = (REPO / "README.md").read_text()
    block = re.search(r"cat > kustomization.yaml <<'YAML'\n(.*?)\nYAML\n", readme, re.S).group(1)
    overlay = tmp_path / "headstart-install"
    overlay.mkdir()
    kustomization = yaml.safe_load(block)
    assert kustomization["resources"] == ["../deploy"]
    kustomization["resources"] = [os.path.relpath(REPO / "deploy", overlay)]  # this clone's deploy/
    (overlay / "kustomization.yaml").write_text(yaml.safe_dump(kustomization))
    done = subprocess.run([str(control_plane_bins["kubectl"]), "kustomize", str(overlay)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    deployment = next(d for d in yaml.safe_load_all(done.stdout) if d and d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["image"] == "registry.example/headstart-operator:0.1.0"
    assert {e["name"]: e.get("value") for e in container["env"]}["HEADSTART_TRAINER_IMAGE"] == \
        "registry.example/headstart-trainer:0.1.0"
