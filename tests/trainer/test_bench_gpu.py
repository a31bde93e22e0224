"""bench/gpu.py: refuses to run without a GPU unless asked for its CPU smoke mode, which runs the whole script
(Headstart and the tutorial, mixed precision on and off) on tiny sizes and ends with one JSON line."""

from __future__ import annotations

import json
import subprocess
import sys

from trainer_support import REPO, trainer_env


def bench(*args: str, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "bench.gpu", *args], capture_output=True, text=True,
                          timeout=timeout, env=trainer_env(), cwd=REPO)


def test_without_a_gpu_it_says_so_in_one_line_and_bad_flags_are_refused():
    proc = bench()
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines()[-1].startswith("error: TensorFlow sees no GPU")
    assert "--cpu" in proc.stderr and "Traceback" not in proc.stderr
    proc = bench("--cpu", "--configs", "fp64")
    assert proc.returncode == 2 and "--configs: unknown fp64" in proc.stderr


def test_cpu_smoke_mode_runs_every_part_and_ends_with_one_json_line():
    # XLA compiles of Xception's training step take minutes on 2 CPU cores: the smoke test leaves them out
    proc = bench("--cpu", "--configs", "fp32,mp", "--tutorial-configs", "mp")
    assert proc.returncode == 0, proc.stderr[-3000:]
    summary = json.loads(proc.stdout.strip().splitlines()[-1])
    assert summary["mode"] == "cpu-smoke" and summary["devices"] == []
    assert summary["application"] == "Xception" and summary["size"] == 71
    results = summary["results"]
    assert set(results) == {"fp32", "mp"} and set(results["mp"]) == {"headstart", "tutorial"}
    for sides in results.values():
        for side in sides.values():
            assert side["frozen_img_s"] > 0 and side["finetune_img_s"] > 0
            assert 0 <= side["val_acc_frozen"] <= 1 and 0 <= side["val_acc"] <= 1
    assert results["fp32"]["headstart"]["replicas"] == 1
    assert summary["train_images"] + summary["val_images"] == 30
    assert summary["machine"]["nproc"] >= 1 and summary["machine"]["cpu"]
