"""Shared test helpers, and the one registration of the control-plane fixtures (controlplane/fixtures.py).

tests/cluster holds Headstart's own tests against the real control plane; tests/controlplane_selftest
holds the control plane's self-tests (it is upstream Kubernetes: GC, RBAC, Jobs, faults of the launcher).
Both share one control plane per session. Trainer helpers live in tests/trainer/."""

from __future__ import annotations

import os
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
    namespace,
    new_namespace,
    node,
    node_image,
    pytest_collection_finish,
    pytest_collection_modifyitems,
)


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
