"""Fixtures of the SDK tests: a local S3-compatible server (moto), on loopback only."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
from controlplane.waiting import wait_for


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="session")
def s3_server(tmp_path_factory):
    """moto's S3 in server mode on 127.0.0.1; yields the environment that points s3fs (and so the trainer's
    and the SDK's fsspec code) at it."""
    port = _free_port()
    log = (tmp_path_factory.mktemp("moto") / "moto.log").open("w")
    proc = subprocess.Popen([str(Path(sys.executable).with_name("moto_server")), "-H", "127.0.0.1", "-p", str(port)],
                            stdout=log, stderr=subprocess.STDOUT)

    def listening() -> bool:
        assert proc.poll() is None, f"moto_server exited ({proc.returncode})"
        socket.create_connection(("127.0.0.1", port), timeout=1).close()
        return True

    try:
        wait_for(listening, f"moto_server on 127.0.0.1:{port}", 60)
    except AssertionError as exc:
        proc.kill()
        pytest.fail(str(exc), pytrace=False)
    env = {"FSSPEC_S3_ENDPOINT_URL": f"http://127.0.0.1:{port}", "AWS_ACCESS_KEY_ID": "headstart-test",
           "AWS_SECRET_ACCESS_KEY": "headstart-test", "AWS_DEFAULT_REGION": "us-east-1",
           "AWS_EC2_METADATA_DISABLED": "true"}
    saved = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        import fsspec

        fsspec.config.conf.setdefault("s3", {})["endpoint_url"] = env["FSSPEC_S3_ENDPOINT_URL"]
        yield env
    finally:
        fsspec.config.conf.get("s3", {}).pop("endpoint_url", None)
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        proc.terminate()
        proc.wait(timeout=30)


sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "trainer"))  # trainer_support: tiny data and models


@pytest.fixture(scope="session")
def tiny_base(tmp_path_factory) -> str:
    """A tiny .keras base model (the trainer tests' own)."""
    from trainer_support import tiny_model

    path = tmp_path_factory.mktemp("sdk-models") / "tiny.keras"
    tiny_model().save(path)
    return str(path)


@pytest.fixture(scope="session")
def colour_folder(tmp_path_factory) -> Path:
    from trainer_support import write_image_folder

    return write_image_folder(tmp_path_factory.mktemp("sdk-images") / "images")
