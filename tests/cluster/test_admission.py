"""deploy/common/admission.yaml on the real API server, with users impersonated as kubectl --as does and each given
its own RBAC: a FineTuneJob is admitted only when its author may read the Secrets and claims it names (the
refusal names them and the missing right), spec.image is held to the platform's allowlist, and a Job the
operator's ServiceAccount makes must be a FineTuneJob's, with no hostPath, privileged container or host
namespace. OwnerReferencesPermissionEnforcement is on for the session (as in OpenShift)."""

from __future__ import annotations

import copy
import json

import pytest
from kubernetes import client
from operator_support import OPERATOR_NS, OPERATOR_SA, job_manifest

from headstart.api.job import FineTuneJob
from headstart.operator import builders
from headstart.operator.config import TrainerConfig

OPERATOR = f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}"


def grant(api, namespace: str, user: str, name: str, rules: list[dict]) -> None:
    rbac = client.RbacAuthorizationV1Api(api)
    rbac.create_namespaced_role(namespace, {"metadata": {"name": name}, "rules": rules})
    rbac.create_namespaced_role_binding(namespace, {
        "metadata": {"name": name}, "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "Role", "name": name},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": user}]})


def as_user(kubectl, user: str, namespace: str, doc: dict):
    """kubectl --as USER create --dry-run=server: what the API server (RBAC and admission) says."""
    return kubectl("--as", user, "-n", namespace, "create", "--dry-run=server", "-f", "-", input=json.dumps(doc),
                   check=False)


@pytest.fixture
def alice(operator_rbac, api_client, namespace):
    """A user who may create FineTuneJobs (and ConfigMaps) in the namespace, and nothing else."""
    grant(api_client, namespace, "alice", "ftj-author", [
        {"apiGroups": ["headstart.dev"], "resources": ["finetunejobs"], "verbs": ["create", "get", "update", "patch"]},
        {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["create"]}])
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret(namespace, {"metadata": {"name": "team-creds"}, "stringData": {"key": "s3cr3t"}})
    return "alice"


def test_a_job_names_only_secrets_and_claims_its_author_may_read(alice, api_client, kubectl, namespace):
    with_secret = job_manifest("creds", env=[{"name": "AWS_SECRET_ACCESS_KEY",
                                               "secretKeyRef": {"name": "team-creds", "key": "key"}}])
    refused = as_user(kubectl, alice, namespace, with_secret)
    assert refused.returncode != 0
    assert "name the Secret(s) team-creds" in refused.stderr and "alice may not get them" in refused.stderr, \
        refused.stderr
    assert "secrets, verb get" in refused.stderr
    assert "s3cr3t" not in refused.stderr
    from_secret = job_manifest("creds-from", envFrom=[{"secretRef": {"name": "team-creds"}}])
    assert as_user(kubectl, alice, namespace, from_secret).returncode != 0
    grant(api_client, namespace, alice, "read-team-creds", [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": ["team-creds"], "verbs": ["get"]}])
    for doc in (with_secret, from_secret):
        admitted = as_user(kubectl, alice, namespace, doc)
        assert admitted.returncode == 0, admitted.stderr

    on_claims = job_manifest("claims", dataset={"imageFolder": {"uri": "pvc://photos/flowers"}},
                             output={"uri": "pvc://models/flowers"})
    refused = as_user(kubectl, alice, namespace, on_claims)
    assert refused.returncode != 0
    assert "spec.output.uri names the PersistentVolumeClaim models" in refused.stderr, refused.stderr
    assert "alice may not get it (it needs the right to get it: persistentvolumeclaims, verb get)" in refused.stderr
    grant(api_client, namespace, alice, "read-claims", [
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "resourceNames": ["photos", "models"],
         "verbs": ["get"]}])
    admitted = as_user(kubectl, alice, namespace, on_claims)
    assert admitted.returncode == 0, admitted.stderr
    # as many Secrets and claims as a job may name: each checked, within what the API server lets a request spend
    names = [f"s{i:02d}" for i in range(16)]
    grant(api_client, namespace, alice, "read-many", [
        {"apiGroups": [""], "resources": ["secrets"], "resourceNames": names, "verbs": ["get"]},
        {"apiGroups": [""], "resources": ["persistentvolumeclaims"], "resourceNames": ["base", "tfds"],
         "verbs": ["get"]}])
    many = job_manifest("many", env=[{"name": f"K{i}", "secretKeyRef": {"name": n, "key": "k"}}
                                     for i, n in enumerate(names[:12])],
                        envFrom=[{"secretRef": {"name": n}} for n in names[12:]],
                        baseModel={"uri": "pvc://base/model.keras"},
                        dataset={"tfds": {"name": "tf_flowers", "dataDir": "pvc://tfds/data"}},
                        output={"uri": "pvc://models/many"})
    admitted = as_user(kubectl, alice, namespace, many)
    assert admitted.returncode == 0, admitted.stderr
    last_unreadable = copy.deepcopy(many)
    last_unreadable["spec"]["envFrom"][-1]["secretRef"]["name"] = "not-hers"
    refused = as_user(kubectl, alice, namespace, last_unreadable)
    assert refused.returncode != 0 and "not-hers" in refused.stderr, refused.stderr
    # the guard looks at the spec only: a job whose Secret its author may not read can still be labelled
    kubectl("-n", namespace, "create", "-f", "-", input=json.dumps(with_secret))  # by the admin
    client.RbacAuthorizationV1Api(api_client).delete_namespaced_role_binding("read-team-creds", namespace)
    labelled = kubectl("--as", alice, "-n", namespace, "label", "ftj", "creds", "team=vision", check=False)
    assert labelled.returncode == 0, labelled.stderr


def test_spec_image_is_held_to_the_platforms_allowlist(alice, api_client, kubectl, namespace):
    core = client.CoreV1Api(api_client)
    core.patch_namespaced_config_map("headstart-admission", OPERATOR_NS, {"data": {
        "imageAllowlist": "registry.example/ml/, registry.example/headstart-"}})
    try:
        refused = as_user(kubectl, alice, namespace, job_manifest("evil", image="evil.example/miner:1"))
        assert refused.returncode != 0
        assert "spec.image: evil.example/miner:1 is not from an allowed registry" in refused.stderr, refused.stderr
        assert "registry.example/ml/, registry.example/headstart-" in refused.stderr
        for image in ("registry.example/ml/trainer:2", "registry.example/headstart-trainer:0.1.0"):
            admitted = as_user(kubectl, alice, namespace, job_manifest("fine", image=image))
            assert admitted.returncode == 0, (image, admitted.stderr)
        assert as_user(kubectl, alice, namespace, job_manifest("default-image")).returncode == 0  # no spec.image
    finally:
        core.patch_namespaced_config_map("headstart-admission", OPERATOR_NS, {"data": {"imageAllowlist": ""}})
    assert as_user(kubectl, alice, namespace, job_manifest("any", image="evil.example/miner:1")).returncode == 0


def test_the_operators_jobs_cannot_reach_the_node(operator_rbac, kubectl, namespace):
    owner = {"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {
        "name": "j", "namespace": namespace, "uid": "00000000-0000-0000-0000-000000000001"},
        "spec": job_manifest("j")["spec"]}
    good = builders.build_job(owner, FineTuneJob.model_validate(owner), TrainerConfig(image="trainer:1"))
    admitted = as_user(kubectl, OPERATOR, namespace, good)
    assert admitted.returncode == 0, admitted.stderr  # what the operator builds passes (dry run)

    def variant(change) -> dict:
        doc = copy.deepcopy(good)
        change(doc)
        return doc

    pod = lambda d: d["spec"]["template"]["spec"]  # noqa: E731
    bad = {
        "no owner": variant(lambda d: d["metadata"].pop("ownerReferences")),
        "a hostPath": variant(lambda d: pod(d)["volumes"].append({"name": "root", "hostPath": {"path": "/"}})),
        "a privileged container": variant(lambda d: pod(d)["containers"][0]["securityContext"].update(
            privileged=True, allowPrivilegeEscalation=True)),
        "the host's network": variant(lambda d: pod(d).update(hostNetwork=True)),
        "another ServiceAccount": variant(lambda d: pod(d).update(serviceAccountName="admin")),
        "an API token": variant(lambda d: pod(d).update(automountServiceAccountToken=True)),
    }
    for what, doc in bad.items():
        refused = as_user(kubectl, OPERATOR, namespace, doc)
        assert refused.returncode != 0, f"the operator's token created a Job with {what}"
        assert "a Job of the Headstart operator" in refused.stderr, (what, refused.stderr)
    # the admin (not the operator) is not held to it
    assert kubectl("-n", namespace, "create", "--dry-run=server", "-f", "-",
                   input=json.dumps(bad["a hostPath"])).returncode == 0


def test_owner_references_permission_enforcement_is_on(alice, api_client, kubectl, namespace):
    created = client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        "headstart.dev", "v1alpha1", namespace, "finetunejobs", job_manifest("owner"))
    config_map = {"apiVersion": "v1", "kind": "ConfigMap", "metadata": {"name": "child", "ownerReferences": [{
        "apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "name": "owner",
        "uid": created["metadata"]["uid"], "blockOwnerDeletion": True}]}}
    refused = as_user(kubectl, alice, namespace, config_map)
    assert refused.returncode != 0 and "blockOwnerDeletion" in refused.stderr, refused.stderr
    # ... which the operator may: its Jobs carry blockOwnerDeletion (every operator test creates them so)
    can = kubectl("auth", "can-i", "update", "finetunejobs.headstart.dev", "--subresource=finalizers", "--as",
                  OPERATOR, "-n", namespace, check=False)
    assert can.stdout.strip() == "yes", can.stdout + can.stderr
