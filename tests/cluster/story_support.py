"""Helpers of the whole-story tests (a uniquely named module): FineTuneJobs that run on the real node, a
PersistentVolumeClaim bound to a hostPath volume, the quickstart's data on it."""

from __future__ import annotations

import copy
import hashlib
import os
from pathlib import Path
from typing import Any

import yaml
from controlplane.fixtures import ON_REAL_NODE
from controlplane.waiting import wait_for
from kubernetes import client

REPO = Path(__file__).resolve().parents[2]
CLUSTER_EXAMPLES = REPO / "examples" / "quickstart" / "cluster"
TRAINER_UID = 1000


def on_real_node(doc: dict[str, Any], image: str, **spec: Any) -> dict[str, Any]:
    """``doc`` with the scheduling that puts its pod on the real node, the locally built trainer image and
    ``spec`` changes applied (what a user of this cluster writes)."""
    doc = copy.deepcopy(doc)
    doc["spec"]["scheduling"] = {
        "nodeSelector": dict(ON_REAL_NODE["nodeSelector"]),
        "tolerations": [{"key": t["key"], "operator": t["operator"], "value": t["value"], "effect": t["effect"]}
                        for t in ON_REAL_NODE["tolerations"]],
    }
    doc["spec"]["image"] = image
    doc["spec"].update(spec)
    return doc


def chown_tree(root: Path, uid: int = TRAINER_UID) -> None:
    """The trainer runs as uid 1000; a hostPath volume keeps the host's owners."""
    for path in [root, *root.rglob("*")]:
        os.chown(path, uid, uid)


def bind_claim(api: client.ApiClient, namespace: str, name: str, volume: str, size: str = "1Gi") -> None:
    """A claim bound, through the persistent-volume binder, to the named hostPath volume."""
    core = client.CoreV1Api(api)
    core.create_namespaced_persistent_volume_claim(namespace, client.V1PersistentVolumeClaim(
        metadata=client.V1ObjectMeta(name=name),
        spec=client.V1PersistentVolumeClaimSpec(
            access_modes=["ReadWriteOnce"], storage_class_name="", volume_name=volume,
            resources=client.V1VolumeResourceRequirements(requests={"storage": size}))))
    wait_for(lambda: core.read_namespaced_persistent_volume_claim(name, namespace).status.phase == "Bound",
             f"claim {namespace}/{name} bound to {volume}", 60)


def quickstart_jobs(image: str, epoch_scale: float, test_fraction: float) -> dict[str, dict]:
    """The three cluster quickstart jobs, on the real node, epochs scaled as the reduced quickstart does."""
    jobs = {}
    for name in ("digits-source", "digits-transfer", "digits-scratch"):
        doc = yaml.safe_load((CLUSTER_EXAMPLES / f"{name}.yaml").read_text())
        for stage in doc["spec"]["stages"]:
            stage["epochs"] = max(1, round(stage["epochs"] * epoch_scale))
        if name != "digits-source":
            doc["spec"]["dataset"]["splits"]["test"] = test_fraction
        jobs[name] = on_real_node(doc, image)
    return jobs


def sha256_of(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


TUNE_EPOCHS = 12
STAGES = [
    {"name": "head", "trainBase": "none", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}},
    {"name": "tune", "trainBase": "all", "epochs": TUNE_EPOCHS, "optimizer": {"type": "Adam", "learningRate": 0.001}},
]


def job(name: str, image: str, **spec) -> dict:
    doc = {"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob", "metadata": {"name": name},
           "spec": {"baseModel": {"uri": "pvc://work/base.keras"},
                    "dataset": {"imageFolder": {"uri": "pvc://work/data/source"}, "splits": {"validation": 0.2},
                                "batchSize": 64},
                    "stages": STAGES, "output": {"uri": f"pvc://work/models/{name}", "formats": ["keras"]},
                    "resources": {"gpus": 0}}}
    return on_real_node(doc, image, **spec)
