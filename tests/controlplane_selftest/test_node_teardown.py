"""A node leaves nothing behind, whether stopped or killed, and the next one starts clean.

These tests start their own nodes beside the session's (another name, their own namespaces and
cgroup tree, a taint no other test tolerates) and compare the host before and after.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
from controlplane import cgroups, images
from controlplane.node import Node
from controlplane.waiting import wait_for
from kubernetes import client
from node_support import RESTRICTED, wait_ready

TESTS_DIR = Path(__file__).resolve().parents[1]
TAINT = {"key": "headstart.dev/teardown-test", "value": "true", "effect": "NoSchedule"}


def host_state() -> dict[str, object]:
    """What a node could leak into the host: links, named netns, mounts, the host's firewall, state dirs."""

    def out(*argv: str) -> str:
        return subprocess.run(argv, capture_output=True, text=True, timeout=30).stdout

    return {
        "links": sorted(line.split()[0] for line in out("ip", "-br", "link").splitlines() if line),
        "netns": out("ip", "netns", "list"),
        "iptables": [line for line in out("iptables-save").splitlines() if not line.startswith("#")],
        "nft": out("nft", "list", "ruleset"),
        "mounts": sorted(Path("/proc/self/mounts").read_text().splitlines()),
        # what containerd, the kubelet and the CNI plugins would write by default
        **{d: sorted(os.listdir(d)) for d in ("/run", "/var/lib", "/var/log", "/etc/cni", "/opt")
           if os.path.isdir(d)},
    }


def alive(pid: int) -> bool:
    """Running or sleeping; a zombie is dead, waiting for its parent (init, for a shim) to reap it."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    return stat.rsplit(")", 1)[1].split()[0] != "Z"


def leftovers(node: Node, before: dict[str, object], pids: set[int]) -> list[str]:
    after = host_state()
    found = [f"{key} changed: {before[key]!r} -> {after[key]!r}" for key in before
             if key != "mounts" and after[key] != before[key]]
    found += [f"mount left: {m}" for m in after["mounts"] if m not in before["mounts"]]  # type: ignore[operator]
    found += [f"process {p} still alive" for p in pids if alive(p)]
    found += [f"cgroup left: {d}" for d in node.cgroup.dirs() if d.exists()]
    found += [f"cgroup parent left: {d}" for d in node.cgroup.created if d.exists()]
    if node.workdir.exists():
        found.append(f"work directory left: {node.workdir}")
    return found


def pod_on(node_name: str, image: str) -> dict:
    return {
        "apiVersion": "v1", "kind": "Pod", "metadata": {"name": "sleeper"},
        "spec": {
            "nodeSelector": {"kubernetes.io/hostname": node_name},
            "tolerations": [{"key": TAINT["key"], "operator": "Exists"}],
            "terminationGracePeriodSeconds": 1,
            "containers": [{"name": "main", "image": image, "imagePullPolicy": "Never",
                            "command": ["sleep", "600"], "securityContext": RESTRICTED}],
        },
    }


def test_a_stopped_node_leaves_nothing_and_a_second_one_starts_clean(control_plane, api_client, namespace):
    base_ref, base_archive = images.build("base")
    before = host_state()
    for attempt in range(2):
        node = Node(control_plane, name="teardown-node", taints=[TAINT]).start()
        try:
            node.load_image(base_archive)
            client.CoreV1Api(api_client).create_namespaced_pod(namespace, pod_on(node.name, base_ref))
            wait_ready(api_client, namespace, "sleeper")
            pids = node.cgroup.pids()
            # a running pod: containerd, its shim, pause and the container, all in the node's tree
            assert len(pids) >= 6, pids
            assert any(Path(node.workdir / "state" / "containerd").iterdir())
        finally:
            client.CoreV1Api(api_client).delete_namespaced_pod("sleeper", namespace, grace_period_seconds=0)
            node.stop()
        problems = leftovers(node, before, pids)
        assert not problems, f"run {attempt + 1}:\n" + "\n".join(problems)
        node.stop()  # idempotent


@pytest.mark.timeout(300)
def test_a_killed_launcher_leaves_a_tree_the_next_node_sweeps(tmp_path, bin_dir):
    """SIGKILL `make cluster`: its daemons die with it; shims and pods are swept by the next node."""
    kubeconfig = tmp_path / "kubeconfig"
    env = {**os.environ, "PYTHONPATH": str(TESTS_DIR), "HEADSTART_K8S_BIN": str(bin_dir)}
    log = (tmp_path / "launcher.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "controlplane", "--kubeconfig", str(kubeconfig), "--images", "base",
         "--start-timeout", "180"], env=env, stdout=log, stderr=subprocess.STDOUT)
    try:
        wait_for(lambda: kubeconfig.exists() or proc.poll() is not None, "the launcher to be ready", 240)
        assert proc.poll() is None, (tmp_path / "launcher.log").read_text()
        output = (tmp_path / "launcher.log").read_text()
        base_ref = next(line.split()[1] for line in output.splitlines() if line.strip().startswith("image:"))
        kenv = {**os.environ, "KUBECONFIG": str(kubeconfig)}
        manifest = pod_on("headstart-node", base_ref)
        manifest["spec"].pop("tolerations")
        subprocess.run([str(bin_dir / "kubectl"), "apply", "-f", "-"], input=json.dumps(manifest), env=kenv,
                       check=True, capture_output=True, text=True, timeout=60)
        subprocess.run([str(bin_dir / "kubectl"), "wait", "--for=condition=Ready", "pod/sleeper",
                        "--timeout=120s"], env=kenv, check=True, capture_output=True, text=True, timeout=150)
        mount = next(iter(cgroups.hierarchies().values()))
        trees = [p for p in mount.glob(f"**/{cgroups.PREFIX}{proc.pid}-*") if p.is_dir()]
        assert trees, "the launcher's node has no cgroup tree"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # the control plane's own files (etcd data, PKI) are this test's to remove: nothing sweeps them
        for line in (tmp_path / "launcher.log").read_text().splitlines():
            if line.strip().startswith("logs:"):
                shutil.rmtree(Path(line.split()[1].rstrip(",")).parent, ignore_errors=True)
    stale = {int(p) for t in trees for d, _s, f in os.walk(t) if "cgroup.procs" in f
              for p in Path(d, "cgroup.procs").read_text().split()}
    # the kernel ended the daemons (parent-death signal); shims and the pod's processes outlive them
    assert stale, "nothing outlived the launcher: the sweep below would prove nothing"
    sweeper = cgroups.NodeCgroup("sweeper")
    swept = sweeper.sweep_stale()
    assert trees[0].name in swept
    assert not [t for t in trees if t.exists()]
    # out of the cgroup at once; gone from /proc once their new parent (init) has reaped them
    wait_for(lambda: not [p for p in stale if Path(f"/proc/{p}").exists()], "the stale processes to be reaped", 30)
    workdirs = list(Path("/tmp").glob(f"headstart-node-{proc.pid}-*"))
    assert workdirs, "the killed launcher's node left no work directory: the sweep below would prove nothing"
    from controlplane.node import _sweep_workdirs

    assert {w.name for w in workdirs} <= set(_sweep_workdirs(Path("/tmp")))
    assert not [w for w in workdirs if w.exists()]
