"""Pods for the real-node self-tests: specs that run on the real node, and waits on their phase."""

from __future__ import annotations

import uuid

from controlplane.fixtures import ON_REAL_NODE
from controlplane.waiting import wait_for
from kubernetes import client

RESTRICTED = {
    "runAsNonRoot": True,
    "runAsUser": 1000,
    "allowPrivilegeEscalation": False,
    "capabilities": {"drop": ["ALL"]},
    "seccompProfile": {"type": "RuntimeDefault"},
}


def pod_manifest(image: str, command: list[str], *, name: str | None = None, volumes: list[dict] | None = None,
                 mounts: list[dict] | None = None, resources: dict | None = None, restart: str = "Never") -> dict:
    container = {
        "name": "main",
        "image": image,
        "imagePullPolicy": "Never",
        "command": command,
        "securityContext": RESTRICTED,
        "volumeMounts": mounts or [],
    }
    if resources:
        container["resources"] = resources
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {"name": name or f"pod-{uuid.uuid4().hex[:6]}"},
        "spec": {
            **ON_REAL_NODE,
            "restartPolicy": restart,
            "terminationGracePeriodSeconds": 1,
            "containers": [container],
            "volumes": volumes or [],
        },
    }


def create_pod(api, namespace: str, manifest: dict) -> str:
    client.CoreV1Api(api).create_namespaced_pod(namespace, manifest)
    return manifest["metadata"]["name"]


def wait_phase(api, namespace: str, name: str, phases: tuple[str, ...], timeout: float = 90.0) -> client.V1Pod:
    core = client.CoreV1Api(api)

    def reached():
        pod = core.read_namespaced_pod(name, namespace)
        if pod.status.phase in phases:
            return pod
        if pod.status.phase in ("Succeeded", "Failed"):
            raise AssertionError(f"pod {name} ended {pod.status.phase}, expected {phases}: {pod.status}")
        return None

    return wait_for(reached, f"pod {namespace}/{name} to be {'/'.join(phases)}", timeout)


def wait_ready(api, namespace: str, name: str, timeout: float = 90.0) -> client.V1Pod:
    core = client.CoreV1Api(api)

    def ready():
        pod = core.read_namespaced_pod(name, namespace)
        conditions = pod.status.conditions or []
        return pod if any(c.type == "Ready" and c.status == "True" for c in conditions) else None

    return wait_for(ready, f"pod {namespace}/{name} to be Ready", timeout)


def logs(api, namespace: str, name: str) -> str:
    return client.CoreV1Api(api).read_namespaced_pod_log(name, namespace)
