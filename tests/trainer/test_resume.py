"""A run killed in the middle of a stage resumes from its last complete epoch and finishes as scheduled."""

from __future__ import annotations

import json
import signal
import subprocess
import sys

import numpy as np
import pytest
from trainer_support import REPO, job_dict, trainer_env, wait_for_line, write_job_file

STAGES = [
    {"name": "head", "trainBase": "none", "epochs": 2, "optimizer": {"type": "Adam", "learningRate": 0.02}},
    {"name": "tune", "trainBase": "all", "epochs": 12,
     "optimizer": {"type": "SGD", "learningRate": 0.01, "momentum": 0.9, "schedule": {"type": "cosine"}},
     "earlyStopping": {"monitor": "val_loss", "patience": 50}},
]


def start(job_file, out):
    return subprocess.Popen([sys.executable, "-m", "headstart.trainer", "--job", str(job_file), "--output",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=trainer_env(), cwd=REPO)


def test_a_run_killed_mid_stage_resumes_and_finishes_exactly_as_scheduled(tiny_model_uri, image_folder,
                                                                           tmp_path):
    import keras

    from headstart.trainer import outputs

    doc = job_dict("resumable", base={"uri": tiny_model_uri}, stages=STAGES,
                   dataset={"imageFolder": {"uri": str(image_folder)}, "splits": {"validation": 0.25},
                            "batchSize": 4},
                   output={"uri": str(tmp_path / "unused"), "formats": ["keras"]})
    job_file = write_job_file(tmp_path / "job.yaml", doc)
    out = tmp_path / "out"

    proc = start(job_file, out)
    try:
        # checkpoints are written while the next epoch trains: once epoch 4 ends, epoch 3's is in storage
        wait_for_line(proc, "stage 2 tune epoch 4/12", timeout=180)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=60)
    assert proc.returncode == -signal.SIGKILL
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert [s["name"] for s in state["stages"]] == ["head"]
    done = state["current"]["epochs_done"]
    assert state["current"]["index"] == 1 and 3 <= done < 12, "killed in the middle of stage 2"
    assert outputs.existing(str(out)) is None, "an interrupted run must not look complete"

    proc = start(job_file, out)
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    assert f"resuming stage 2 after epoch {done}" in stdout
    epochs_run = [line for line in stdout.splitlines() if line.startswith("stage 2 tune epoch")]
    assert epochs_run[0].startswith(f"stage 2 tune epoch {done + 1}/12")
    assert epochs_run[-1].startswith("stage 2 tune epoch 12/12") and len(epochs_run) == 12 - done
    assert "stage 1 head epoch" not in stdout

    metrics = json.loads((out / "metrics.json").read_text())
    assert [(s["name"], s["epochs_completed"]) for s in metrics["stages"]] == [("head", 2), ("tune", 12)]
    tune = metrics["stages"][1]["epochs_history"]
    assert [e["epoch"] for e in tune] == list(range(1, 13))
    # the cosine schedule continued where it stopped: one learning rate per epoch, decreasing
    rates = [e["learning_rate"] for e in tune]
    assert all(a > b for a, b in zip(rates, rates[1:]))
    assert outputs.verify(str(out)) == []
    model = keras.saving.load_model(out / "model.keras")
    x = np.random.default_rng(1).uniform(0, 255, (4, 32, 32, 3)).astype("float32")
    probs = model.predict(x, verbose=0)
    assert probs.shape == (4, 3) and np.allclose(probs.sum(axis=1), 1.0, atol=1e-5)
    # early stopping (restoreBestWeights, patience longer than the stage) put back the best epoch's weights,
    # across the restart: the model written scores exactly what that epoch scored on validation
    best = min(tune, key=lambda e: e["val_loss"])
    assert metrics["final"]["val_loss"] == pytest.approx(best["val_loss"], rel=1e-4)
    assert metrics["final"]["val_accuracy"] == pytest.approx(best["val_accuracy"])


def test_early_stopping_state_and_best_weights_survive_a_restart(folder_job, tmp_path):
    import pytest

    from headstart.trainer import Reporter, run_job

    class StopAfter(Reporter):
        """Interrupts the run (as Ctrl-C would) once the checkpoint of epoch 2 is written."""

        def epoch_ended(self, progress):
            if progress.epoch == 2:
                raise KeyboardInterrupt

    # val_accuracy never improves by 1.0: epoch 1 is the best, patience 2 stops after epoch 3
    stage = {"name": "tune", "trainBase": "all", "epochs": 10, "optimizer": {"type": "SGD", "learningRate": 0.05},
             "earlyStopping": {"monitor": "val_accuracy", "patience": 2, "minDelta": 1.0}}
    job = folder_job(stages=[stage], output={"uri": str(tmp_path / "out"), "formats": ["keras"]})
    with pytest.raises(KeyboardInterrupt):
        run_job(job, reporter=StopAfter())
    result = run_job(job)
    assert result.resumed
    (tune,) = result.stages
    assert tune.epochs_completed == 3 and tune.stopped_early
    assert len(tune.history["val_loss"]) == 3
    # the best epoch's weights (epoch 1, saved before the interruption) are the final model's
    assert result.metrics["val_loss"] == pytest.approx(tune.history["val_loss"][0], rel=1e-5)


def test_a_feature_cache_stage_checkpoints_only_the_head_and_resumes_from_it(folder_job, tmp_path):
    import keras
    import pytest

    from headstart.trainer import Reporter, run_job

    class StopAfter(Reporter):
        """Interrupts after the checkpoint of the stage's last epoch, before its stage-end save."""

        def epoch_ended(self, progress):
            if progress.epoch == 3:
                raise KeyboardInterrupt

    stage = {"name": "head", "trainBase": "none", "epochs": 3, "optimizer": {"type": "Adam", "learningRate": 0.05}}
    out = tmp_path / "out"
    job = folder_job(stages=[stage], output={"uri": str(out), "formats": ["keras"]})
    with pytest.raises(KeyboardInterrupt):
        run_job(job, reporter=StopAfter())
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    assert state["weights"] == "stage-00-start.weights.npz"  # the whole model once, before the stage
    assert state["current"]["head_weights"] == "stage-00-epoch-0003.head.npz"
    files = sorted(p.name for p in (out / "checkpoints").iterdir())
    assert not [f for f in files if "epoch" in f and f.endswith(".weights.npz")], files
    with np.load(out / "checkpoints" / state["current"]["head_weights"]) as npz:
        saved_head = [npz[f"arr_{i}"] for i in range(len(npz.files))]
    with np.load(out / "checkpoints" / state["weights"]) as full:
        assert 0 < len(saved_head) < len(full.files)

    result = run_job(job)  # nothing left to train: the model is what the checkpoints restore
    assert result.resumed
    assert result.stages[0].epochs_completed == 3 and result.stages[0].feature_cache
    final = keras.saving.load_model(out / "model.keras")
    kernel, bias = final.layers[-1].get_weights()
    assert np.array_equal(kernel, saved_head[-2]) and np.array_equal(bias, saved_head[-1])
