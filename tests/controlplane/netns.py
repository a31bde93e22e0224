"""A node's own mount and network namespaces, as kind gives a node its own container.

:class:`Namespaces` starts a holder process with `unshare --mount --net`.  Before
it reports ready, the holder (a shell script, `holder_script`) gives the new
mount namespace a private /run, /var/lib and /var/log (so containerd, the
kubelet and the CNI plugins write nothing into the host's), and sets up the
network namespace: loopback, the node's address and, before any daemon or pod
can start, the firewall.  Daemons then run inside both with
`nsenter --target HOLDER --mount --net`, adopted first into the node's cgroup.

The holder reads its stdin until the launcher closes it (or dies): then it
exits, and the namespaces go away with the last process in them.
"""

from __future__ import annotations

import ctypes
import os
import shlex
import socket
import subprocess
import threading
from pathlib import Path

from .processes import ComponentError, die_with_parent

CLONE_NEWNET = 0x40000000
_LIBC = ctypes.CDLL(None, use_errno=True)


def socket_in(netns_fd: int, family: int = socket.AF_INET, kind: int = socket.SOCK_STREAM) -> socket.socket:
    """A new socket that belongs to the network namespace open as `netns_fd`.

    setns(2) moves only the calling thread, so a short-lived thread enters the
    namespace, creates the socket and ends; the socket keeps its namespace."""
    result: dict[str, object] = {}

    def work() -> None:
        if _LIBC.setns(netns_fd, CLONE_NEWNET) != 0:
            err = ctypes.get_errno()
            result["error"] = OSError(err, f"setns(CLONE_NEWNET): {os.strerror(err)}")
            return
        try:
            result["socket"] = socket.socket(family, kind)
        except OSError as exc:
            result["error"] = exc

    thread = threading.Thread(target=work, name="setns", daemon=True)
    thread.start()
    thread.join()
    if "error" in result:
        raise result["error"]  # type: ignore[misc]
    return result["socket"]  # type: ignore[return-value]


def holder_script(state: Path, network_setup: str) -> str:
    """The holder's shell script: private directories, the network, then wait for stdin to close."""
    lib, log = state / "var-lib", state / "var-log"
    return "\n".join([
        "set -eu",
        f"mkdir -p {shlex.quote(str(lib))} {shlex.quote(str(log))}",
        # new mounts stay in this namespace (unshare made propagation private)
        "mount -n -t tmpfs -o mode=0755,nosuid,nodev headstart-node-run /run",  # -n: no utab in the host's /run
        f"mount -n --bind {shlex.quote(str(lib))} /var/lib",
        f"mount -n --bind {shlex.quote(str(log))} /var/log",
        network_setup,
        "echo ready",
        "exec cat >/dev/null",
    ])


class Namespaces:
    """The holder process and handles on its namespaces."""

    def __init__(self, state: Path, network_setup: str, cgroup_procs: list[Path], log: Path) -> None:
        self.state = state
        self._script = holder_script(state, network_setup)
        self._cgroup_procs = cgroup_procs
        self._log = log
        self.proc: subprocess.Popen | None = None
        self.pid = 0
        self.netns_fd = -1

    def start(self, timeout: float = 30.0) -> None:
        self._log.parent.mkdir(parents=True, exist_ok=True)
        with open(self._log, "ab") as log:
            self.proc = subprocess.Popen(
                ["unshare", "--mount", "--net", "--propagation", "private", "--",
                 "sh", "-c", self.adopt_and_exec(), "holder", "sh", "-c", self._script],
                stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log,
                preexec_fn=die_with_parent, start_new_session=True,
            )
        self.pid = self.proc.pid
        line = _read_line(self.proc, timeout)
        if line != "ready":
            self.stop()
            raise ComponentError("node namespaces", f"holder did not get ready (said {line!r})", self._log)
        self.netns_fd = os.open(f"/proc/{self.pid}/ns/net", os.O_RDONLY | os.O_CLOEXEC)

    def adopt_and_exec(self) -> str:
        """`sh -c` text that moves itself into the node's cgroup, then execs its arguments."""
        writes = " ".join(f"echo $$ > {shlex.quote(str(p))};" for p in self._cgroup_procs)
        return f'{writes} exec "$@"'

    def command(self, argv: list[str]) -> list[str]:
        """argv run inside the node's mount and network namespaces, in the node's cgroup."""
        return ["sh", "-c", self.adopt_and_exec(), "node",
                "nsenter", f"--target={self.pid}", "--mount", "--net", "--", *argv]

    def run(self, argv: list[str], timeout: float = 60.0, check: bool = True,
            input: str | None = None) -> subprocess.CompletedProcess[str]:
        done = subprocess.run(self.command(argv), capture_output=True, text=True, timeout=timeout, input=input)
        if check and done.returncode != 0:
            raise ComponentError("node", f"{' '.join(argv)} failed ({done.returncode}): {done.stderr.strip()}",
                                 None)
        return done

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> None:
        if self.netns_fd >= 0:
            os.close(self.netns_fd)
            self.netns_fd = -1
        proc, self.proc = self.proc, None
        if proc is None:
            return
        if proc.stdin:
            proc.stdin.close()  # the holder's `cat` sees end of file and exits
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=timeout)
        if proc.stdout:
            proc.stdout.close()


def _read_line(proc: subprocess.Popen, timeout: float) -> str:
    """First line of the holder's stdout, or '' if it exits or says nothing within `timeout`."""
    out: list[str] = []
    reader = threading.Thread(target=lambda: out.append(proc.stdout.readline().decode().strip()), daemon=True)
    reader.start()
    reader.join(timeout)
    return out[0] if out else ""
