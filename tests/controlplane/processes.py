"""Child processes of the control plane: start, readiness with a deadline, stop.

Every wait here is bounded.  A component that exits or never becomes ready
raises :class:`ComponentError`, which names the component and carries the
last lines of its log, so a taken port or a corrupt data directory reads as
such instead of as a timeout somewhere else.
"""

from __future__ import annotations

import ctypes
import os
import signal
import socket
import ssl
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from pathlib import Path

LOG_TAIL_LINES = 25
_PR_SET_PDEATHSIG = 1


class ComponentError(RuntimeError):
    """A control-plane component failed to start or to become ready."""

    def __init__(self, component: str, problem: str, log_path: Path | None) -> None:
        self.component = component
        self.problem = problem
        self.log_path = log_path
        tail = tail_lines(log_path) if log_path else ""
        where = f" (log: {log_path})" if log_path else ""
        super().__init__(
            f"{component}: {problem}{where}\n--- last lines of {component} log ---\n{tail}"
        )


def tail_lines(path: Path, count: int = LOG_TAIL_LINES) -> str:
    try:
        lines = path.read_text(errors="replace").splitlines()
    except OSError as exc:
        return f"<log unreadable: {exc}>"
    return "\n".join(lines[-count:]) if lines else "<log is empty>"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (the OS picks it)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


try:  # loaded once here so the forked child only makes a system call
    _LIBC = ctypes.CDLL(None, use_errno=True)
except OSError:
    _LIBC = None


def die_with_parent(sig: int = signal.SIGKILL) -> None:
    """Ask Linux to send `sig` to this process when its parent dies."""
    if _LIBC is not None:
        _LIBC.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)


def https_ok(url: str, context: ssl.SSLContext, timeout: float = 2.0) -> Callable[[], bool]:
    """A probe that is true when GET `url` answers 200 (TLS, loopback only)."""

    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, context=context, timeout=timeout) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError, ssl.SSLError):
            return False

    return probe


def http_ok(url: str, timeout: float = 2.0) -> Callable[[], bool]:
    def probe() -> bool:
        try:
            with urllib.request.urlopen(url, timeout=timeout) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    return probe


class Component:
    """One control-plane binary running as a child process, logging to a file."""

    def __init__(
        self,
        name: str,
        argv: Sequence[str],
        log_path: Path,
        ready: Callable[[], bool],
    ) -> None:
        self.name = name
        self.argv = list(argv)
        self.log_path = log_path
        self.ready = ready
        self.proc: subprocess.Popen | None = None
        self.pid: int | None = None  # kept after stop(), for diagnostics

    def start(self) -> None:
        binary = Path(self.argv[0])
        if not (binary.is_file() and os.access(binary, os.X_OK)):
            raise ComponentError(self.name, f"binary not found or not executable: {binary}", None)
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.log_path, "ab") as log:
            self.proc = subprocess.Popen(
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                preexec_fn=die_with_parent,  # no orphans if we are killed
                start_new_session=True,  # Ctrl-C in a terminal reaches only the launcher
            )
        self.pid = self.proc.pid

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def wait_ready(self, deadline: float) -> None:
        """Poll the readiness probe until `deadline` (a time.monotonic() value)."""
        assert self.proc is not None, "start() first"
        while True:
            code = self.proc.poll()
            if code is not None:
                raise ComponentError(self.name, f"exited with code {code} during start", self.log_path)
            if self.ready():
                return
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise ComponentError(self.name, "not ready before the start deadline", self.log_path)
            try:  # doubles as the poll interval and as death detection
                self.proc.wait(timeout=min(0.2, remaining))
            except subprocess.TimeoutExpired:
                pass

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise ComponentError(self.name, f"exited with code {self.proc.returncode}", self.log_path)

    def stop(self, grace: float = 10.0) -> None:
        """SIGTERM, then SIGKILL after `grace` seconds; always reaps the child."""
        proc, self.proc = self.proc, None
        stop_process(proc, grace)


def stop_process(proc: subprocess.Popen | None, grace: float) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps the child (nothing if it has ended)."""
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)
