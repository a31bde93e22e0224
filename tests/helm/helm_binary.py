"""The real helm binary of the chart tests, from tests/helm/build.sh: HEADSTART_HELM as is, else the cache
(~/.cache/headstart/helm/<version>-<key>/bin/helm), else a build from the Go module this directory pins.
A helm that cannot be had is an error of the tests that need it, never a reason to skip them, and never a mock.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

BUILD_SCRIPT = Path(__file__).resolve().parent / "build.sh"
BUILD_TIMEOUT = 3600.0  # a cold build on 2 cores shared with other work took 12.5 minutes


class HelmMissing(RuntimeError):
    pass


def resolve(timeout: float = BUILD_TIMEOUT) -> Path:
    """Run build.sh (a cache hit takes well under a second) and return the binary's path."""
    try:
        done = subprocess.run([str(BUILD_SCRIPT)], capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        raise HelmMissing(f"{BUILD_SCRIPT} did not finish within {timeout:.0f}s") from exc
    if done.returncode != 0:
        raise HelmMissing(f"{BUILD_SCRIPT} failed (exit {done.returncode}):\n{done.stderr[-4000:]}")
    path = Path(done.stdout.strip().splitlines()[-1])
    if not path.is_file():
        raise HelmMissing(f"{BUILD_SCRIPT} printed {path}, which is not a file")
    return path
