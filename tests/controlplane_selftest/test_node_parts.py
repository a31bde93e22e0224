"""The node's parts on their own: configuration files the tools accept, and the API server's egress proxy."""

from __future__ import annotations

import json
import socket
import subprocess
import threading

import tomllib
from controlplane import nodeconfig
from controlplane.tunnels import EgressProxy


def test_firewall_rules_are_accepted_by_nft(tmp_path):
    rules = tmp_path / "firewall.nft"
    rules.write_text(nodeconfig.firewall_rules())
    # checked (-c) in a throw-away network namespace: nothing is loaded anywhere
    done = subprocess.run(["unshare", "--net", "nft", "-c", "-f", str(rules)], capture_output=True, text=True,
                          timeout=30)
    assert done.returncode == 0, done.stderr
    assert nodeconfig.REFUSED_TCP in rules.read_text() and nodeconfig.REFUSED_OTHER in rules.read_text()


def test_containerd_kubelet_and_cni_configuration(tmp_path):
    containerd = tomllib.loads(nodeconfig.containerd_config(tmp_path, tmp_path / "cni", "localhost/pause:1"))
    cri = containerd["plugins"]["io.containerd.grpc.v1.cri"]
    assert cri["restrict_oom_score_adj"] is True
    assert cri["sandbox_image"] == "localhost/pause:1"
    assert containerd["state"] == "/run/containerd"  # the node's private /run
    kubelet = json.loads(nodeconfig.kubelet_config(
        state=tmp_path, cgroup_root="/x/headstart-node-1-a", ca=tmp_path / "ca", serving_cert=tmp_path / "c",
        serving_key=tmp_path / "k", resolv_conf=tmp_path / "r", cgroup_v1=True))
    assert kubelet["failCgroupV1"] is False and kubelet["cgroupDriver"] == "cgroupfs"
    assert kubelet["authentication"]["anonymous"]["enabled"] is False
    assert kubelet["authorization"]["mode"] == "Webhook" and kubelet["readOnlyPort"] == 0
    assert "failCgroupV1" not in json.loads(nodeconfig.kubelet_config(
        state=tmp_path, cgroup_root="/", ca=tmp_path, serving_cert=tmp_path, serving_key=tmp_path,
        resolv_conf=tmp_path, cgroup_v1=False))
    cni = json.loads(nodeconfig.cni_config())
    assert cni["plugins"][0]["ipMasq"] is False


def _connect(proxy: EgressProxy, target: str) -> tuple[str, socket.socket]:
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    sock.settimeout(10)
    sock.connect(str(proxy.path))
    sock.sendall(f"CONNECT {target} HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
    status = b""
    while b"\r\n\r\n" not in status:
        chunk = sock.recv(1)
        if not chunk:
            break
        status += chunk
    return status.split(b"\r\n", 1)[0].decode(), sock


def test_egress_proxy_tunnels_to_loopback_and_refuses_other_destinations(tmp_path):
    proxy = EgressProxy(tmp_path / "egress.sock", tmp_path / "egress.log")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def echo() -> None:
        conn, _ = server.accept()
        conn.sendall(conn.recv(100).upper())
        conn.close()

    thread = threading.Thread(target=echo, daemon=True)
    thread.start()
    try:
        status, sock = _connect(proxy, f"127.0.0.1:{port}")
        assert status == "HTTP/1.1 200 Connection established"
        sock.sendall(b"hello")
        assert sock.recv(100) == b"HELLO"
        sock.close()
        # TEST-NET-1, in no node's networks: refused by the proxy without dialling
        status, sock = _connect(proxy, "192.0.2.1:10250")
        assert status == "HTTP/1.1 403 Forbidden"
        sock.close()
        assert proxy.refused == ["192.0.2.1:10250"]
        assert "refused 192.0.2.1:10250" in (tmp_path / "egress.log").read_text()
    finally:
        thread.join(timeout=10)
        server.close()
        proxy.close()
    assert not (tmp_path / "egress.sock").exists()
