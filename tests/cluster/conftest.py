"""Fixtures of Headstart's cluster tests: the CRD installed, the operator's RBAC from deploy/, and the
operator itself running under that RBAC (session-wide, restartable by a test)."""

from __future__ import annotations

import json

import pytest
from controlplane.waiting import wait_for
from kubernetes import client
from kueue_support import queued_jobs, queued_operator, queues, why_of  # noqa: F401 - the Kueue stories' fixtures
from operator_support import (
    OPERATOR_NS,
    OPERATOR_SA,
    REPO,
    Jobs,
    OperatorProcess,
    service_account_token,
    token_kubeconfig,
)

DEPLOY = REPO / "deploy"


@pytest.fixture(scope="session")
def crd_installed(api_client, kubectl):
    """deploy/crds applied, Established and served."""
    kubectl("apply", "-f", str(DEPLOY / "crds"))
    ext = client.ApiextensionsV1Api(api_client)

    def established() -> bool:
        conds = ext.read_custom_resource_definition("finetunejobs.headstart.dev").status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    wait_for(established, "FineTuneJob CRD Established", 30)
    custom = client.CustomObjectsApi(api_client)
    wait_for(lambda: custom.list_cluster_custom_object("headstart.dev", "v1alpha1", "finetunejobs") is not None,
             "FineTuneJobs served", 30)


@pytest.fixture(scope="session")
def operator_rbac(crd_installed, kubectl):
    """The operator's namespace, ServiceAccount, ClusterRole and binding, and the admission guard, exactly as
    deploy/ has them (the guard's policies then hold for every test of the session)."""
    kubectl("apply", "-f", str(DEPLOY / "namespace.yaml"), "-f", str(DEPLOY / "rbac.yaml"),
            "-f", str(DEPLOY / "common" / "admission.yaml"))
    # The API server takes a policy up a moment after it is created: wait until the guard is in force (a Job
    # the operator's token may create but the guard refuses, as a dry run).
    orphan = json.dumps({"apiVersion": "batch/v1", "kind": "Job", "metadata": {"name": "probe"}, "spec": {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "i"}]}}}})

    def in_force() -> bool:
        done = kubectl("--as", f"system:serviceaccount:{OPERATOR_NS}:{OPERATOR_SA}", "-n", OPERATOR_NS, "create",
                       "--dry-run=server", "-f", "-", input=orphan, check=False)
        return done.returncode != 0 and "ValidatingAdmissionPolicy" in done.stderr

    wait_for(in_force, "the admission guard in force", 60)
    return OPERATOR_NS, OPERATOR_SA


@pytest.fixture(scope="session")
def operator(operator_rbac, kubeconfig, kubectl, tmp_path_factory):
    """The operator as a subprocess whose only credential is its ServiceAccount's token."""
    workdir = tmp_path_factory.mktemp("operator")
    token = service_account_token(kubectl, *operator_rbac)
    proc = OperatorProcess(token_kubeconfig(kubeconfig, token, workdir / "operator.kubeconfig"), workdir)
    proc.start()
    try:
        yield proc
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def reachable_operator(operator, node):
    """The operator, with its progress endpoint reachable from pods on the real node (a relay into the node's
    namespace at the URL the operator gives its pods): the relay, which a test may close and reopen."""
    holder = {"relay": node.forward(operator.endpoint.port)}

    class Reach:
        def cut(self) -> None:
            """Connections from the node to the endpoint are refused from now on (a partition)."""
            holder["relay"].close()

        def restore(self) -> None:
            holder["relay"] = node.forward(operator.endpoint.port)

    yield Reach()
    holder["relay"].close()


@pytest.fixture
def workspace(node, node_image, host_path_volume, api_client, namespace):
    """A claim 'work' holding a small digits folder and a base model; the trainer image on the node."""
    from story_support import bind_claim, chown_tree

    from headstart import quickstart as qs

    volume, folder = host_path_volume("1Gi")
    qs.prepare_data(folder, qs.Sizes(source_copies=1, target_per_class=12))
    qs.write_base(folder / "base.keras")
    chown_tree(folder)
    bind_claim(api_client, namespace, "work", volume)
    return folder, node_image("trainer")


@pytest.fixture
def jobs(operator, api_client, namespace) -> Jobs:
    """FineTuneJobs in this test's namespace, with the operator running."""
    return Jobs(api_client, namespace)


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """On a failed operator test, show the end of the operator's log."""
    outcome = yield
    report = outcome.get_result()
    proc = item.funcargs.get("operator") if hasattr(item, "funcargs") else None
    if report.failed and isinstance(proc, OperatorProcess):
        report.sections.append(("operator log (tail)", proc.log_tail()))
