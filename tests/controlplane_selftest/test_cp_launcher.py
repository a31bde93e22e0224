"""`make cluster`: the foreground launcher a human uses (python -m controlplane)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from controlplane.waiting import wait_for

TESTS_DIR = Path(__file__).resolve().parents[1]


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    return False


@pytest.mark.parametrize("stop_signal", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
def test_launcher_serves_kubectl_and_stops_cleanly(tmp_path, bin_dir, stop_signal):
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "HEADSTART_K8S_BIN": str(bin_dir)}
    log = (tmp_path / "launcher.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "--kubeconfig", str(kubeconfig),
         "--gpu-nodes", "1", "--no-node", "--start-timeout", "120"],
        env=env, stdout=log, stderr=subprocess.STDOUT,
    )
    try:
        wait_for(lambda: kubeconfig.exists() or proc.poll() is not None,
                 "launcher to write the kubeconfig", 150)
        output = (tmp_path / "launcher.log").read_text()
        assert proc.poll() is None, f"launcher exited early:\n{output}"
        assert f"export KUBECONFIG={kubeconfig}" in output

        nodes = subprocess.run(
            [str(bin_dir / "kubectl"), "get", "nodes", "-o", "name"],
            env={**os.environ, "KUBECONFIG": str(kubeconfig)},
            capture_output=True, text=True, timeout=60, check=True,
        )
        assert nodes.stdout.split() == ["node/gpu-node-0"]

        components = _children(proc.pid)
        assert len(components) == 4, components
        proc.send_signal(stop_signal)
        assert proc.wait(timeout=60) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=30)
        log.close()
    assert all(_gone(pid) for pid in components), "a component outlived the launcher"
    assert not kubeconfig.exists()
    assert "stopped." in (tmp_path / "launcher.log").read_text()
