"""CRDs are served for real: structural schema, CEL rules, status subresource, watch."""

from __future__ import annotations

import json
import uuid

import pytest
from controlplane.waiting import wait_for
from kubernetes import client, watch

VERSION = "v1"
PLURAL = "gadgets"


def _crd(group: str) -> dict:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{PLURAL}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"plural": PLURAL, "singular": "gadget", "kind": "Gadget"},
            "versions": [{
                "name": VERSION,
                "served": True,
                "storage": True,
                "subresources": {"status": {}},
                "schema": {"openAPIV3Schema": {
                    "type": "object",
                    "properties": {
                        "spec": {
                            "type": "object",
                            "required": ["min", "max"],
                            "properties": {
                                "min": {"type": "integer", "minimum": 0},
                                "max": {"type": "integer"},
                            },
                            "x-kubernetes-validations": [{
                                "rule": "self.min <= self.max",
                                "message": "min must not exceed max",
                            }],
                        },
                        "status": {
                            "type": "object",
                            "properties": {"phase": {"type": "string"}},
                        },
                    },
                }},
            }],
        },
    }


@pytest.fixture(scope="module")
def gadget_group(api_client, kubectl):
    """Apply a throw-away CRD with kubectl (as a human would) and wait until Established.

    One CRD per module; every test writes its objects into its own namespace."""
    group = f"g{uuid.uuid4().hex[:8]}.proof.headstart.dev"
    kubectl("apply", "-f", "-", input=json.dumps(_crd(group)))
    ext = client.ApiextensionsV1Api(api_client)
    name = f"{PLURAL}.{group}"

    def established() -> bool:
        conds = ext.read_custom_resource_definition(name).status.conditions or []
        return any(c.type == "Established" and c.status == "True" for c in conds)

    wait_for(established, f"CRD {name} Established", 30)
    custom = client.CustomObjectsApi(api_client)
    wait_for(lambda: custom.list_cluster_custom_object(group, VERSION, PLURAL) is not None,
             f"{name} served", 30)
    yield group
    ext.delete_custom_resource_definition(name)


def _gadget(name: str, lo: object, hi: object) -> dict:
    return {"apiVersion": "", "kind": "Gadget", "metadata": {"name": name},
            "spec": {"min": lo, "max": hi}}


def _create(api_client, group, namespace, body):
    body = {**body, "apiVersion": f"{group}/{VERSION}"}
    return client.CustomObjectsApi(api_client).create_namespaced_custom_object(
        group, VERSION, namespace, PLURAL, body)


def test_valid_object_is_served(api_client, gadget_group, namespace, kubectl):
    created = _create(api_client, gadget_group, namespace, _gadget("ok", 1, 3))
    assert created["metadata"]["resourceVersion"]
    out = kubectl("get", f"{PLURAL}.{gadget_group}", "-n", namespace, "-o", "json").stdout
    assert [i["metadata"]["name"] for i in json.loads(out)["items"]] == ["ok"]


@pytest.mark.parametrize(
    ("lo", "hi", "expected"),
    [
        (5, 1, "min must not exceed max"),  # CEL rule
        (-1, 1, "should be greater than or equal to 0"),  # OpenAPI minimum
        ("one", 2, "must be of type integer"),  # structural type
    ],
)
def test_invalid_object_is_rejected_server_side(api_client, gadget_group, namespace,
                                                lo, hi, expected):
    with pytest.raises(client.ApiException) as err:
        _create(api_client, gadget_group, namespace, _gadget("bad", lo, hi))
    assert err.value.status == 422
    assert expected in err.value.body


def test_status_is_a_subresource(api_client, gadget_group, namespace):
    custom = client.CustomObjectsApi(api_client)
    obj = _create(api_client, gadget_group, namespace, _gadget("s", 0, 1))
    # Writes to the main resource drop status ...
    obj["status"] = {"phase": "Ignored"}
    obj = custom.replace_namespaced_custom_object(
        gadget_group, VERSION, namespace, PLURAL, "s", obj)
    assert "status" not in obj
    # ... and only the /status subresource sets it, without bumping generation.
    gen = obj["metadata"]["generation"]
    obj = custom.patch_namespaced_custom_object_status(
        gadget_group, VERSION, namespace, PLURAL, "s", {"status": {"phase": "Ready"}},
        _content_type="application/merge-patch+json")
    assert obj["status"] == {"phase": "Ready"}
    assert obj["metadata"]["generation"] == gen


def test_stale_resource_version_conflicts(api_client, gadget_group, namespace):
    custom = client.CustomObjectsApi(api_client)
    stale = _create(api_client, gadget_group, namespace, _gadget("rv", 0, 1))
    fresh = {**stale, "spec": {"min": 0, "max": 2}}
    custom.replace_namespaced_custom_object(gadget_group, VERSION, namespace, PLURAL, "rv", fresh)
    stale["spec"] = {"min": 0, "max": 9}
    with pytest.raises(client.ApiException) as err:
        custom.replace_namespaced_custom_object(
            gadget_group, VERSION, namespace, PLURAL, "rv", stale)
    assert err.value.status == 409


def test_watch_from_resource_version_sees_changes(api_client, gadget_group, namespace):
    custom = client.CustomObjectsApi(api_client)
    rv = custom.list_namespaced_custom_object(
        gadget_group, VERSION, namespace, PLURAL)["metadata"]["resourceVersion"]
    _create(api_client, gadget_group, namespace, _gadget("w", 0, 1))
    custom.delete_namespaced_custom_object(gadget_group, VERSION, namespace, PLURAL, "w")
    seen = []
    stream = watch.Watch().stream(
        custom.list_namespaced_custom_object, gadget_group, VERSION, namespace, PLURAL,
        resource_version=rv, timeout_seconds=20, _request_timeout=30)
    for event in stream:
        seen.append((event["type"], event["object"]["metadata"]["name"]))
        if event["type"] == "DELETED":
            break
    assert seen == [("ADDED", "w"), ("DELETED", "w")]
