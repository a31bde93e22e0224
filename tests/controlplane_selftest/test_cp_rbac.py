"""The RBAC authorizer: a ServiceAccount with a narrow Role gets exactly that."""

from __future__ import annotations

import base64

import pytest
from controlplane.waiting import wait_for
from kubernetes import client


def _narrow_account(api_client, namespace: str) -> None:
    """ServiceAccount `reader` may get/list ConfigMaps in `namespace`, nothing else."""
    core, rbac = client.CoreV1Api(api_client), client.RbacAuthorizationV1Api(api_client)
    core.create_namespaced_service_account(
        namespace, client.V1ServiceAccount(metadata=client.V1ObjectMeta(name="reader")))
    rbac.create_namespaced_role(namespace, client.V1Role(
        metadata=client.V1ObjectMeta(name="configmap-reader"),
        rules=[client.V1PolicyRule(api_groups=[""], resources=["configmaps"],
                                   verbs=["get", "list"])],
    ))
    rbac.create_namespaced_role_binding(namespace, client.V1RoleBinding(
        metadata=client.V1ObjectMeta(name="reader"),
        role_ref=client.V1RoleRef(api_group="rbac.authorization.k8s.io", kind="Role",
                                  name="configmap-reader"),
        subjects=[client.RbacV1Subject(kind="ServiceAccount", name="reader",
                                       namespace=namespace)],
    ))


def _client_with_token(admin: client.ApiClient, token: str) -> client.ApiClient:
    cfg = client.Configuration()
    cfg.host = admin.configuration.host
    cfg.ssl_ca_cert = admin.configuration.ssl_ca_cert
    cfg.api_key = {"authorization": token}
    cfg.api_key_prefix = {"authorization": "Bearer"}
    return client.ApiClient(cfg)


def _status(call) -> int:
    try:
        call()
    except client.ApiException as exc:
        return exc.status
    return 200


def _assert_narrow(token_client: client.ApiClient, inside: str, outside: str) -> None:
    core = client.CoreV1Api(token_client)
    assert _status(lambda: core.list_namespaced_config_map(inside)) == 200
    assert _status(lambda: core.read_namespaced_config_map("kube-root-ca.crt", inside)) == 200
    # same resource, other namespace; other verb; other resource; cluster scope
    assert _status(lambda: core.list_namespaced_config_map(outside)) == 403
    assert _status(lambda: core.create_namespaced_config_map(
        inside, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="x")))) == 403
    assert _status(lambda: core.list_namespaced_secret(inside)) == 403
    assert _status(lambda: core.list_namespace()) == 403


@pytest.fixture
def two_namespaces(api_client, new_namespace):
    inside, outside = new_namespace(), new_namespace()
    _narrow_account(api_client, inside)
    core = client.CoreV1Api(api_client)
    for ns in (inside, outside):  # the root-ca publisher fills both namespaces
        wait_for(lambda ns=ns: core.read_namespaced_config_map("kube-root-ca.crt", ns),
                 f"kube-root-ca.crt in {ns}", 30)
    return inside, outside


def test_bound_token_is_allowed_inside_its_role_and_denied_outside(api_client, two_namespaces):
    inside, outside = two_namespaces
    request = client.AuthenticationV1TokenRequest(
        spec=client.V1TokenRequestSpec(audiences=[], expiration_seconds=600))
    token = client.CoreV1Api(api_client).create_namespaced_service_account_token(
        "reader", inside, request).status.token
    with _client_with_token(api_client, token) as sa:
        who = client.AuthenticationV1Api(sa).create_self_subject_review(
            client.V1SelfSubjectReview())
        assert who.status.user_info.username == f"system:serviceaccount:{inside}:reader"
        _assert_narrow(sa, inside, outside)


def test_legacy_token_secret_is_populated_and_equally_narrow(api_client, two_namespaces):
    inside, outside = two_namespaces
    core = client.CoreV1Api(api_client)
    core.create_namespaced_secret(inside, client.V1Secret(
        metadata=client.V1ObjectMeta(
            name="reader-token",
            annotations={"kubernetes.io/service-account.name": "reader"}),
        type="kubernetes.io/service-account-token",
    ))

    def token() -> str | None:
        data = core.read_namespaced_secret("reader-token", inside).data or {}
        return data.get("token")

    encoded = wait_for(token, "serviceaccount-token controller to fill the Secret", 30)
    with _client_with_token(api_client, base64.b64decode(encoded).decode()) as sa:
        _assert_narrow(sa, inside, outside)


def test_unknown_token_is_unauthorized(api_client, namespace):
    with _client_with_token(api_client, "not-a-real-token") as anon:
        status = _status(lambda: client.CoreV1Api(anon).list_namespaced_config_map(namespace))
    assert status == 401
