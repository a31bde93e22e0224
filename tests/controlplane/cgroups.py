"""One cgroup tree per node: every process of the node lives in it, and teardown empties and removes it.

The tree sits below the launcher's own cgroup (so the node is accounted where
the launcher is) in every mounted hierarchy, named headstart-node-<pid>-<id>:
  <tree>/runtime   the holder, containerd, its shims, kubelet, kube-proxy
  <tree>/kubepods  made by the kubelet (its cgroupRoot is <tree>) for the pods
Teardown kills what is left in the tree by process id (never by name), waits
until it is empty and removes every directory, the kubelet's included.  A tree
whose launcher pid is gone (a killed test run) is swept the same way by the
next node that starts, so a second run starts clean.
"""

from __future__ import annotations

import os
import re
import signal
import time
from pathlib import Path

from .waiting import wait_for

PREFIX = "headstart-node-"
_STALE = re.compile(rf"^{PREFIX}(\d+)-[0-9a-f]+$")


def hierarchies() -> dict[str, Path]:
    """Mounted cgroup hierarchies: {controller list (v1) or "" (v2): mount point}."""
    found: dict[str, Path] = {}
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        left, _, right = line.partition(" - ")
        fields, extra = left.split(), right.split()
        if not extra:
            continue
        if extra[0] == "cgroup2":
            found.setdefault("", Path(fields[4]))
        elif extra[0] == "cgroup":
            opts = extra[-1].split(",")
            names = [o for o in opts if o not in ("rw", "ro") and not o.startswith(("relatime", "nosuid"))]
            key = ",".join(sorted(n for n in names if n in _V1_CONTROLLERS or n.startswith("name=")))
            if key:
                found[key] = Path(fields[4])
    return found


_V1_CONTROLLERS = {"cpu", "cpuacct", "cpuset", "memory", "devices", "freezer", "blkio", "pids",
                   "hugetlb", "net_cls", "net_prio", "perf_event", "rdma", "misc"}


def cgroup_v1() -> bool:
    """True when controllers live in v1 hierarchies (a "unified" v2 mount beside them holds none)."""
    return any(hierarchies())


def own_path() -> str:
    """This process's cgroup: the memory controller's on v1 (where the launcher is accounted)."""
    lines = Path("/proc/self/cgroup").read_text().splitlines()
    for line in lines:
        _, controllers, path = line.split(":", 2)
        if "memory" in controllers.split(","):
            return path
    for line in lines:
        if line.startswith("0::"):
            return line[3:]
    return "/"


class NodeCgroup:
    def __init__(self, ident: str) -> None:
        self.name = f"{PREFIX}{os.getpid()}-{ident}"
        base = own_path().rstrip("/")
        self.path = f"{base}/{self.name}"  # the kubelet's cgroupRoot
        self._base = base
        self._mounts = hierarchies()
        # Processes are adopted into the controllers' hierarchies: the v1 ones on a v1 host (where
        # runc also makes each container's cgroup in the v2 "unified" mount), else the v2 one.
        v1 = {k: p for k, p in self._mounts.items() if k}
        self._adopt = v1 or self._mounts
        self.created: list[Path] = []  # directories this tree made, outermost first

    def dirs(self, child: str = "") -> list[Path]:
        rel = self.path.lstrip("/") + (f"/{child}" if child else "")
        return [mount / rel for mount in self._mounts.values()]

    def create(self) -> None:
        # In every hierarchy, the unified one too (runc makes container cgroups there on a v1 host):
        # the directories made here are the ones destroy() removes.
        for key, mount in self._mounts.items():
            current = mount
            for part in [*self.path.strip("/").split("/"), "runtime"]:
                parent, current = current, current / part
                if not current.exists():
                    current.mkdir()
                    self.created.append(current)
                    if "cpuset" in key.split(","):
                        for knob in ("cpuset.cpus", "cpuset.mems"):
                            (current / knob).write_text((parent / knob).read_text())
        if "" in self._adopt:  # v2: let the kubelet set the controllers it needs below the tree
            for path in self.created:
                controllers = (path.parent / "cgroup.controllers").read_text().split()
                (path.parent / "cgroup.subtree_control").write_text(" ".join(f"+{c}" for c in controllers))

    def procs_files(self) -> list[Path]:
        """cgroup.procs of <tree>/runtime in every hierarchy: write a pid there to adopt it."""
        rel = self.path.lstrip("/") + "/runtime"
        return [mount / rel / "cgroup.procs" for mount in self._adopt.values()]

    def pids(self) -> set[int]:
        return _pids_below(self.dirs())

    def destroy(self, timeout: float = 30.0) -> None:
        """Kill every process in the tree (by pid), wait until it is empty, remove the directories."""
        _empty_and_remove(self.dirs(), timeout)
        for path in reversed(self.created):
            try:
                path.rmdir()
            except FileNotFoundError:
                pass

    def sweep_stale(self) -> list[str]:
        """Remove trees of earlier nodes whose launcher process is gone; return their names.

        Looked for up to three levels deep, since each launcher nests its tree under its own cgroup."""
        stale: dict[str, list[Path]] = {}
        for mount in self._mounts.values():
            for pattern in (f"{PREFIX}*", f"*/{PREFIX}*", f"*/*/{PREFIX}*", f"*/*/*/{PREFIX}*"):
                for entry in mount.glob(pattern):
                    match = _STALE.match(entry.name)
                    if match and entry.is_dir() and not _alive(int(match.group(1))):
                        stale.setdefault(entry.name, []).append(entry)
        for roots in stale.values():
            _empty_and_remove(roots, 30.0)
        return sorted(stale)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def pids_below(roots: list[Path]) -> set[int]:
    """Every process in the cgroups below ``roots`` (each hierarchy)."""
    return _pids_below(roots)


def _pids_below(roots: list[Path]) -> set[int]:
    pids: set[int] = set()
    for root in roots:
        if not root.is_dir():
            continue
        for directory, _subdirs, files in os.walk(root):
            if "cgroup.procs" in files:
                try:
                    text = Path(directory, "cgroup.procs").read_text()
                except OSError:
                    continue
                pids.update(int(p) for p in text.split())
    return pids


def _empty_and_remove(roots: list[Path], timeout: float) -> None:
    # Frozen processes cannot die: thaw first (the kubelet never freezes, runc pause might).
    for root in roots:
        state = root / "freezer.state"
        if state.exists():
            try:
                state.write_text("THAWED")
            except OSError:
                pass

    def killed_all() -> bool:
        pids = _pids_below(roots)
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        return not pids

    wait_for(killed_all, f"the processes in {roots[0] if roots else 'the node cgroup'} to exit", timeout)
    for root in roots:
        if not root.is_dir():
            continue
        for directory, _subdirs, _files in sorted(os.walk(root), key=lambda w: -len(w[0])):
            _rmdir_retry(Path(directory), time.monotonic() + timeout)


def _rmdir_retry(path: Path, deadline: float) -> None:
    """rmdir a cgroup; the kernel may report EBUSY for a moment after its last process exits."""

    def removed() -> bool:
        try:
            path.rmdir()
        except FileNotFoundError:
            return True
        except OSError:
            return False
        return True

    wait_for(removed, f"cgroup {path} to be removable", max(deadline - time.monotonic(), 1.0))
