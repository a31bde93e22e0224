"""deploy/ on the real API server: `kubectl apply -k deploy/` is accepted whole, and the operator's
ClusterRole grants what it uses and no more."""

from __future__ import annotations

import pytest
from kubernetes import client
from operator_support import OPERATOR_NS, OPERATOR_SA, REPO


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
