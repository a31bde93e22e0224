"""The namespaced install mode on the real API server, for real: `kubectl apply -k deploy/namespaced/` in place of
the session's cluster-wide RBAC (its ClusterRoleBinding removed first), then the operator's own token asked
(`kubectl auth can-i`), used (`kubectl create --dry-run=server`, the admission guard included) and run as the
operator (`--namespace team-a`, exactly that RBAC): it may work in team-a and nowhere else, reads no Secret,
binds no role, makes no hostPath Job, trains team-a's jobs (its progress endpoint's TokenReviews included) and
leaves another namespace's alone. Afterwards the session's cluster-wide RBAC is back (the cluster-wide mode's
own checks: test_operator_deploy.py).

The session operator runs cluster-wide; it is stopped for this module and started again at its end."""

from __future__ import annotations

import json
import uuid

import pytest
import yaml
from controlplane.kubelet import retire_namespace
from controlplane.waiting import wait_for
from kubernetes import client
from operator_support import (
    OPERATOR_NS,
    OPERATOR_SA,
    REPO,
    Jobs,
    OperatorProcess,
    job_manifest,
    operator_job,
    pod_token,
    post_progress,
    with_host_path,
)

from headstart.api.progress import audience

DEPLOY = REPO / "deploy"
WATCHED = "team-a"  # deploy/namespaced/'s one watched namespace
OPERATOR = f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}"
WORKLOADS = "app.kubernetes.io/name=headstart"


def operator_may(api, verb: str, resource: str, namespace: str = "", group: str = "") -> bool:
    """A SubjectAccessReview for the operator's ServiceAccount (with the groups its token carries)."""
    review = client.AuthorizationV1Api(api).create_subject_access_review({"spec": {
        "user": OPERATOR,
        "groups": ["system:serviceaccounts", f"system:serviceaccounts:{OPERATOR_NS}", "system:authenticated"],
        "resourceAttributes": {"namespace": namespace, "verb": verb, "group": group, "resource": resource}}})
    return bool(review.status.allowed)


def key(doc: dict) -> tuple[str, str, str]:
    return doc["kind"], doc["metadata"].get("namespace", ""), doc["metadata"]["name"]


def existing(kubectl, docs: list[dict]) -> set[tuple[str, str, str]]:
    """The keys of those of ``docs`` that exist now."""
    out = kubectl("get", "-f", "-", "--ignore-not-found", "-o", "json", input=yaml.safe_dump_all(docs)).stdout
    found = json.loads(out) if out.strip() else {"kind": "List", "items": []}
    return {key(d) for d in (found["items"] if found["kind"] == "List" else [found])}


def create_namespace(api, name: str) -> str:
    """Create ``name`` (retried while a namespace of that name is still being deleted)."""
    core = client.CoreV1Api(api)
    wait_for(lambda: core.create_namespace({"metadata": {"name": name}}), f"namespace {name} created", 60)
    wait_for(lambda: core.read_namespaced_service_account("default", name), f"ServiceAccount {name}/default", 30)
    return name


def remove_workloads(api) -> None:
    """The pods of the Deployment and certgen Job that deploy/namespaced/ made (deleted: they sit on fake nodes
    and never run) finished as a kubelet would (grace 0), until none and no ReplicaSet or Job is left."""
    core, apps = client.CoreV1Api(api), client.AppsV1Api(api)

    def gone() -> bool:
        core.delete_collection_namespaced_pod(OPERATOR_NS, label_selector=WORKLOADS, grace_period_seconds=0)
        left = (core.list_namespaced_pod(OPERATOR_NS, label_selector=WORKLOADS).items
                + apps.list_namespaced_replica_set(OPERATOR_NS, label_selector=WORKLOADS).items
                + client.BatchV1Api(api).list_namespaced_job(OPERATOR_NS, label_selector=WORKLOADS).items)
        return not left

    wait_for(gone, "deploy/namespaced/'s operator and certgen pods gone", 60)


@pytest.fixture(scope="module")
def namespaced_mode(operator, api_client, kubectl):
    """deploy/namespaced/ applied for real, alone: (the watched namespace, another one). Afterwards the objects it
    added are deleted and deploy/'s RBAC and guard applied again (the ClusterRole's TokenReview rule, the
    ClusterRoleBinding)."""
    docs = [d for d in yaml.safe_load_all(kubectl("kustomize", str(DEPLOY / "namespaced")).stdout) if d]
    before = existing(kubectl, docs)
    operator.stop()  # one operator at a time, and none with cluster-wide rights meanwhile
    other = create_namespace(api_client, f"not-watched-{uuid.uuid4().hex[:6]}")
    create_namespace(api_client, WATCHED)
    try:
        kubectl("delete", "clusterrolebinding", "headstart-operator")
        kubectl("apply", "-k", str(DEPLOY / "namespaced"))
        wait_for(lambda: operator_may(api_client, "create", "jobs", WATCHED, "batch")
                 and not operator_may(api_client, "create", "jobs", other, "batch"), "namespaced RBAC in force", 30)
        yield WATCHED, other
    finally:
        added = [d for d in docs if key(d) not in before]
        kubectl("delete", "-f", "-", "--ignore-not-found", "--wait=false", input=yaml.safe_dump_all(added))
        remove_workloads(api_client)
        kubectl("apply", "-f", str(DEPLOY / "rbac.yaml"), "-f", str(DEPLOY / "common" / "admission.yaml"))
        wait_for(lambda: operator_may(api_client, "create", "jobs", other, "batch"), "cluster-wide RBAC back", 30)
        for namespace in (WATCHED, other):
            retire_namespace(api_client, namespace)
        operator.start()


def test_deploy_namespaced_needs_its_watched_namespace_first(operator_rbac, kubectl):
    """Before the module's fixture makes team-a: the whole of deploy/namespaced/ through the API server's validation
    and admission (a dry run), which refuses it, naming the namespace to create."""
    done = kubectl("apply", "-k", str(DEPLOY / "namespaced"), "--dry-run=server", check=False)
    assert done.returncode != 0 and f'namespaces "{WATCHED}" not found' in done.stderr, done.stdout + done.stderr
    assert "deployment.apps/headstart-operator" in done.stdout  # the rest went through
    assert "Warning" not in done.stderr, done.stderr


def test_namespaced_mode_is_only_what_it_adds(namespaced_mode, kubectl):
    """Nothing binds the operator cluster-wide but the role for what is not namespaced (nodes, TokenReviews)."""
    bindings = json.loads(kubectl("get", "clusterrolebindings", "-o", "json").stdout)["items"]
    operator = {"kind": "ServiceAccount", "name": OPERATOR_SA, "namespace": OPERATOR_NS}
    mine = sorted(b["roleRef"]["name"] for b in bindings if operator in (b.get("subjects") or []))
    assert mine == ["headstart-operator-cluster-scoped"]


@pytest.mark.parametrize("args, allowed", [
    (("create", "jobs.batch", "-n", WATCHED), True),
    (("patch", "jobs.batch", "-n", WATCHED), True),
    (("watch", "finetunejobs.headstart.dev", "-n", WATCHED), True),
    (("patch", "finetunejobs.headstart.dev", "--subresource=status", "-n", WATCHED), True),
    (("update", "finetunejobs.headstart.dev", "--subresource=finalizers", "-n", WATCHED), True),
    (("list", "pods", "-n", WATCHED), True),
    (("create", "events", "-n", WATCHED), True),
    (("create", "tokenreviews.authentication.k8s.io"), True),
    (("create", "jobs.batch", "-n", "{other}"), False),
    (("create", "jobs.batch", "-n", OPERATOR_NS), False),
    (("list", "jobs.batch", "--all-namespaces"), False),
    (("watch", "finetunejobs.headstart.dev", "--all-namespaces"), False),
    (("watch", "finetunejobs.headstart.dev", "-n", "{other}"), False),
    (("list", "pods", "-n", "{other}"), False),
    (("create", "events", "-n", "{other}"), False),
    (("get", "secrets", "-n", WATCHED), False),
    (("list", "secrets", "-n", WATCHED), False),
    (("get", "secrets", "-n", OPERATOR_NS), False),
    (("create", "rolebindings.rbac.authorization.k8s.io", "-n", WATCHED), False),
    (("create", "rolebindings.rbac.authorization.k8s.io", "-n", "{other}"), False),
    (("create", "clusterrolebindings.rbac.authorization.k8s.io"), False),
    (("create", "pods", "-n", WATCHED), False),
    (("delete", "jobs.batch", "-n", WATCHED), False),
    (("create", "serviceaccounts/token", "-n", WATCHED), False),
])
def test_the_operators_token_can_only_do_its_work_in_its_namespaces(namespaced_mode, operator, kubectl, args,
                                                                    allowed):
    """kubectl auth can-i with the operator's own token (a SelfSubjectAccessReview), not an impersonation."""
    _, other = namespaced_mode
    args = tuple(a.replace("{other}", other) for a in args)
    done = kubectl("--kubeconfig", str(operator.kubeconfig), "auth", "can-i", *args, check=False)
    assert done.stdout.strip() == ("yes" if allowed else "no"), (args, done.stdout, done.stderr)


def as_operator(kubectl, operator, namespace: str, doc: dict):
    return kubectl("--kubeconfig", str(operator.kubeconfig), "-n", namespace, "create", "--dry-run=server", "-f", "-",
                   input=json.dumps(doc), check=False)


def test_the_operators_token_creates_a_job_only_in_its_namespaces_and_never_a_hostpath_one(
        namespaced_mode, operator, kubectl):
    watched, other = namespaced_mode
    admitted = as_operator(kubectl, operator, watched, operator_job(watched))
    assert admitted.returncode == 0, admitted.stderr
    refused = as_operator(kubectl, operator, other, operator_job(other))
    assert refused.returncode != 0 and 'cannot create resource "jobs"' in refused.stderr, refused.stderr
    refused = as_operator(kubectl, operator, watched, with_host_path(operator_job(watched)))
    assert refused.returncode != 0
    assert "a Job of the Headstart operator mounts no hostPath volume" in refused.stderr, refused.stderr
    secret = kubectl("--kubeconfig", str(operator.kubeconfig), "-n", watched, "get", "secrets", check=False)
    assert secret.returncode != 0 and 'cannot list resource "secrets"' in secret.stderr, secret.stderr
    binding = kubectl("--kubeconfig", str(operator.kubeconfig), "-n", watched, "create", "rolebinding", "mine",
                      "--clusterrole=admin", f"--serviceaccount={OPERATOR_NS}:{OPERATOR_SA}", check=False)
    assert binding.returncode != 0 and "forbidden" in binding.stderr, binding.stderr


def test_the_namespaced_operator_trains_its_namespaces_jobs_only(namespaced_mode, operator, api_client, kubelet,
                                                                tmp_path):
    """The operator run with --namespace team-a and the token of its ServiceAccount, under deploy/namespaced/'s
    RBAC alone: it creates team-a's training Job, takes its pod's progress (a TokenReview) and leaves the other
    namespace's FineTuneJob untouched."""
    watched, other = namespaced_mode
    scoped = OperatorProcess(operator.kubeconfig, tmp_path, scope=("--namespace", watched), endpoint=operator.endpoint)
    try:
        scoped.start()
        served, ignored = Jobs(api_client, watched), Jobs(api_client, other)
        served.create(job_manifest("here"))
        ignored.create(job_manifest("there"))
        status = served.wait_status("here", "a training Job", lambda s: s.get("trainingJob"), 60)
        assert served.training_job(status["trainingJob"]).metadata.owner_references[0].name == "here"
        pod = served.live_pod("here")
        kubelet.wait_scheduled(watched, pod.metadata.name)
        kubelet.set_phase(watched, pod.metadata.name, "Running")
        served.wait_phase("here", "Running", timeout=60)
        token = pod_token(api_client, watched, audience(watched, "here"), served.live_pod("here"))
        snapshot = {"seq": 1, "stage": "head", "stageIndex": 0, "epoch": 1, "epochs": 2, "metrics": {"loss": 0.5}}
        assert post_progress(scoped.endpoint, watched, "here", token, snapshot)[0] == 200
        served.wait_status("here", "the pod's progress", lambda s: s.get("epoch") == 1, 30)
        served.create(job_manifest("here-too"))  # processed after "there" was created: "there" had its chance
        served.wait_status("here-too", "a training Job", lambda s: s.get("trainingJob"), 60)
        assert ignored.status("there") == {}
        assert not client.BatchV1Api(api_client).list_namespaced_job(other).items
        assert "Forbidden" not in scoped.log_tail(400), scoped.log_tail(400)
    finally:
        scoped.stop()
