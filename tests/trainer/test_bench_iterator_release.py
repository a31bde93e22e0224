"""bench/iterator_release.py: runs both modes for every length and ends with one JSON line; bad flags are
refused in one line, without a traceback."""

from __future__ import annotations

import json
import subprocess
import sys

from trainer_support import REPO, trainer_env


def bench(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.iterator_release", *args], capture_output=True,
                          text=True, timeout=300, env=trainer_env(), cwd=REPO)


def test_both_modes_for_every_length_and_one_json_line():
    proc = bench("--seconds", "0.5,1", "--rounds", "2")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["per_call_s"] > 0
    assert set(summary["passes"]) == {f"{n}s autotune {m}" for n in ("0.5", "1") for m in ("on", "off")}
    for row in summary["passes"].values():
        assert row["passes"] == 2 and len(row["release_s"]) == 2 and row["median_loop_s"] > 0
        assert 0 <= row["slow_releases"] <= 2


def test_bad_flags_are_refused():
    for flags, message in ((["--seconds", "3,x"], "--seconds: '3,x' is not"), (["--rounds", "0"], "above 0")):
        proc = bench(*flags)
        assert proc.returncode == 2 and message in proc.stderr and "Traceback" not in proc.stderr
