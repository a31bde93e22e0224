"""Start-up faults give a clear, bounded error naming the component.

These use their own short-lived etcd (or a whole ControlPlane that fails
early), not the session cluster.
"""

from __future__ import annotations

import os
import socket
import time

import pytest
from controlplane.cluster import ControlPlane
from controlplane.processes import Component, ComponentError, free_port, http_ok


@pytest.fixture(scope="module")
def bins(control_plane_bins):
    return control_plane_bins


def _etcd(bins, tmp_path, client_port: int) -> Component:
    url = f"http://127.0.0.1:{client_port}"
    peer = f"http://127.0.0.1:{free_port()}"
    argv = [str(bins["etcd"]), "--name=fault", f"--data-dir={tmp_path / 'etcd'}",
            f"--listen-client-urls={url}", f"--advertise-client-urls={url}",
            f"--listen-peer-urls={peer}", f"--initial-advertise-peer-urls={peer}",
            f"--initial-cluster=fault={peer}", "--unsafe-no-fsync"]
    return Component("etcd", argv, tmp_path / "etcd.log", http_ok(f"{url}/health"))


def test_port_already_taken_names_component_and_shows_log(bins, tmp_path):
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        etcd = _etcd(bins, tmp_path, squatter.getsockname()[1])
        etcd.start()
        try:
            with pytest.raises(ComponentError) as err:
                etcd.wait_ready(time.monotonic() + 30)
        finally:
            etcd.stop()
    assert err.value.component == "etcd"
    assert "exited with code" in str(err.value)
    assert "address already in use" in str(err.value)


def test_readiness_deadline_is_honoured(bins, tmp_path):
    etcd = _etcd(bins, tmp_path, free_port())
    etcd.ready = lambda: False  # a component that never reports ready
    etcd.start()
    began = time.monotonic()
    try:
        with pytest.raises(ComponentError, match="not ready before the start deadline"):
            etcd.wait_ready(began + 2)
    finally:
        etcd.stop(grace=5)
    assert time.monotonic() - began < 10
    assert etcd.proc is None


def test_missing_binary_is_an_error_naming_it(tmp_path):
    comp = Component("kube-scheduler", [str(tmp_path / "kube-scheduler")],
                     tmp_path / "s.log", lambda: True)
    with pytest.raises(ComponentError, match="kube-scheduler: binary not found"):
        comp.start()


def test_stale_data_dir_fails_start_and_leaves_no_process(bins, tmp_path):
    snap = tmp_path / "etcd" / "member" / "snap"
    snap.mkdir(parents=True)
    (snap / "db").write_bytes(b"this is not a bbolt database" * 512)
    plane = ControlPlane(bins=bins, workdir=tmp_path, start_timeout=30)
    began = time.monotonic()
    with pytest.raises(ComponentError) as err:
        plane.start()
    assert time.monotonic() - began < 30
    assert err.value.component == "etcd"
    assert "last lines of etcd log" in str(err.value)
    assert [c.name for c in plane.started] == ["etcd"]  # nothing after etcd was attempted
    assert plane.components == []
    for comp in plane.started:  # stopped and reaped: the pid no longer exists
        with pytest.raises(ProcessLookupError):
            os.kill(comp.pid, 0)
