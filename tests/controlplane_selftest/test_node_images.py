"""The trainer image, built here from trainer/Dockerfile, runs on the real node, and offline it fails fast.

A job that asks for ImageNet weights must end with the trainer's no-network error within seconds of the
container's start: the pod has no DNS server and every destination off the node is refused, so no
download can hang (or leave the machine).
"""

from __future__ import annotations

import datetime
import struct
import zlib

import yaml
from kubernetes import client
from node_support import create_pod, logs, pod_manifest, wait_phase

JOB = {
    "apiVersion": "headstart.dev/v1alpha1",
    "kind": "FineTuneJob",
    "metadata": {"name": "offline-imagenet"},
    "spec": {
        "baseModel": {"application": "MobileNetV2", "weights": "imagenet"},
        "head": {"pooling": "avg"},
        "dataset": {"imageFolder": {"uri": "/data"}, "batchSize": 2},
        "stages": [{"name": "head", "trainBase": "none", "epochs": 1,
                    "optimizer": {"type": "SGD", "learningRate": 0.1}}],
        "output": {"uri": "/work/out", "formats": ["keras"]},
    },
}


def _png(path, shade: int) -> None:
    """A tiny grey 8x8 PNG, written without an imaging library."""
    raw = b"".join(b"\x00" + bytes([shade]) * 8 for _ in range(8))

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", 8, 8, 8, 0, 0, 0, 0))
                     + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b""))


def test_trainer_image_fails_fast_with_its_no_network_error(api_client, namespace, node, node_image, tmp_path):
    image = node_image("trainer")
    data = tmp_path / "data"
    for label, shade in (("dark", 20), ("light", 230)):
        (data / label).mkdir(parents=True)
        for i in range(4):
            _png(data / label / f"{i}.png", shade + i)
    client.CoreV1Api(api_client).create_namespaced_config_map(namespace, client.V1ConfigMap(
        metadata=client.V1ObjectMeta(name="job"), data={"job.yaml": yaml.safe_dump(JOB)}))
    manifest = pod_manifest(
        image, ["python", "-m", "headstart.trainer", "--job", "/job/job.yaml"],
        volumes=[{"name": "job", "configMap": {"name": "job"}},
                 {"name": "data", "hostPath": {"path": str(data), "type": "Directory"}},
                 {"name": "work", "emptyDir": {}}],
        mounts=[{"name": "job", "mountPath": "/job"}, {"name": "data", "mountPath": "/data", "readOnly": True},
                {"name": "work", "mountPath": "/work"}])
    name = create_pod(api_client, namespace, manifest)
    pod = wait_phase(api_client, namespace, name, ("Failed",), timeout=180)
    state = pod.status.container_statuses[0].state.terminated
    output = logs(api_client, namespace, name)
    assert state.exit_code == 75, output  # EX_TEMPFAIL: no network is transient, the operator retries it
    assert "cannot download the ImageNet weights of MobileNetV2: no network" in output, output
    assert "Traceback" not in output
    ran = state.finished_at - state.started_at
    # TensorFlow's import takes most of it; a download that hung would take minutes
    assert ran < datetime.timedelta(seconds=60), f"the trainer took {ran} to give up"
