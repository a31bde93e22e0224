"""The garbage collector follows ownerReferences."""

from __future__ import annotations

from controlplane.waiting import wait_for
from kubernetes import client, watch


def _owned_children(core: client.CoreV1Api, namespace: str, owner: client.V1ConfigMap,
                    count: int) -> list[str]:
    ref = client.V1OwnerReference(
        api_version="v1", kind="ConfigMap", name=owner.metadata.name,
        uid=owner.metadata.uid, block_owner_deletion=True, controller=True,
    )
    names = []
    for i in range(count):
        name = f"{owner.metadata.name}-child-{i}"
        core.create_namespaced_config_map(namespace, client.V1ConfigMap(
            metadata=client.V1ObjectMeta(name=name, owner_references=[ref])))
        names.append(name)
    return names


def _names(core: client.CoreV1Api, namespace: str) -> set[str]:
    return {cm.metadata.name for cm in core.list_namespaced_config_map(namespace).items
            if cm.metadata.name != "kube-root-ca.crt"}


def test_deleting_owner_collects_children_in_background(api_client, namespace):
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="owner")))
    _owned_children(core, namespace, owner, 3)
    core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="bystander")))

    core.delete_namespaced_config_map("owner", namespace, propagation_policy="Background")
    wait_for(lambda: _names(core, namespace) == {"bystander"},
             "children of the deleted owner to be collected", 60)


def test_foreground_deletion_waits_for_children(api_client, namespace):
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="fg")))
    children = _owned_children(core, namespace, owner, 2)
    listed = core.list_namespaced_config_map(namespace)
    assert _names(core, namespace) == {"fg", *children}

    core.delete_namespaced_config_map("fg", namespace, propagation_policy="Foreground")
    marked = core.read_namespaced_config_map("fg", namespace)
    assert marked.metadata.deletion_timestamp is not None
    assert "foregroundDeletion" in (marked.metadata.finalizers or [])
    deleted: list[str] = []
    stream = watch.Watch().stream(core.list_namespaced_config_map, namespace,
                                  resource_version=listed.metadata.resource_version, timeout_seconds=60)
    for event in stream:
        if event["type"] == "DELETED":
            deleted.append(event["object"].metadata.name)
        if "fg" in deleted:
            break
    assert sorted(deleted[:-1]) == sorted(children) and deleted[-1] == "fg"  # the owner goes last
    wait_for(lambda: not _names(core, namespace), "owner and children to be gone", 60)


def test_orphan_deletion_keeps_children(api_client, namespace):
    core = client.CoreV1Api(api_client)
    owner = core.create_namespaced_config_map(
        namespace, client.V1ConfigMap(metadata=client.V1ObjectMeta(name="parent")))
    children = _owned_children(core, namespace, owner, 2)

    core.delete_namespaced_config_map("parent", namespace, propagation_policy="Orphan")

    def orphaned() -> bool:
        # the owner goes once the GC has stripped the references and its finalizer
        if "parent" in _names(core, namespace):
            return False
        items = [core.read_namespaced_config_map(c, namespace) for c in children]
        return all(not cm.metadata.owner_references for cm in items)

    wait_for(orphaned, "owner deleted and its children orphaned", 60)
    assert _names(core, namespace) == set(children)
