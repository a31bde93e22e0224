"""Shared test helpers. Cluster fixtures live in tests/cluster/conftest.py, trainer ones in tests/trainer/."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent


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
