"""Shared test helpers, and the one registration of the control-plane fixtures (controlplane/fixtures.py).

tests/cluster holds Headstart's own tests against the real control plane; tests/controlplane_selftest
holds the control plane's self-tests (it is upstream Kubernetes: GC, RBAC, Jobs, faults of the launcher).
Both share one control plane per session. Trainer helpers live in tests/trainer/."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))  # makes `controlplane` importable

from controlplane.fixtures import (  # noqa: E402,F401 - pytest finds fixtures and hooks by name
    api_client,
    bin_dir,
    control_plane,
    control_plane_bins,
    host_path_volume,
    kubeconfig,
    kubectl,
    kubelet,
    kueue,
    namespace,
    new_namespace,
    node,
    node_image,
    pytest_collection_finish,
    pytest_collection_modifyitems,
)
from controlplane.waiting import wait_for  # noqa: E402


@pytest.fixture
def repo() -> Path:
    return REPO


def run_cli(*args: str, stdin: str | None = None, env: dict[str, str] | None = None,
            cwd: Path | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    """Run the real `headstart` command line in a subprocess."""
    full_env = {**os.environ, **(env or {})}
    return subprocess.run(
        [sys.executable, "-c", "from headstart.sdk.cli import main; main()", *args],
        input=stdin, capture_output=True, text=True, env=full_env, cwd=str(cwd or REPO), timeout=timeout,
    )


@pytest.fixture
def cli():
    return run_cli


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
