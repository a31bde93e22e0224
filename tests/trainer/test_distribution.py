"""Several devices: a MirroredStrategy run computes the model a single-device run computes, resumes, and
one device means no strategy at all. The CPU is split into logical devices in a subprocess
(mirrored_run.py), so this process keeps TensorFlow's default configuration."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from trainer_support import REPO, job_dict, trainer_env

STAGES = [
    {"name": "head", "trainBase": "none", "epochs": 2,
     "optimizer": {"type": "SGD", "learningRate": 0.1, "momentum": 0.9}},
    {"name": "tune", "trainBase": "all", "epochs": 2, "optimizer": {"type": "SGD", "learningRate": 0.02}},
]


def weights(path: Path) -> list:
    import keras

    return keras.saving.load_model(path / "model.keras").get_weights()


def test_mirrored_run_computes_the_single_device_model_and_resumes(tiny_model_uri, image_folder, tmp_path):
    from headstart.api import FineTuneJob
    from headstart.trainer import run_job

    def job(batch: int) -> dict:
        # 18 train images: global batches of 8, 8, 2, each split evenly across two replicas. Not shuffled:
        # under a strategy Keras reads one batch ahead before the first epoch (to build the model), which
        # moves a reshuffle-each-epoch sequence on by one epoch; the numbers are what this test compares.
        return job_dict("mirrored", base={"uri": tiny_model_uri}, stages=STAGES,
                        dataset={"imageFolder": {"uri": str(image_folder)}, "splits": {"validation": 0.25},
                                 "batchSize": batch, "shuffleBuffer": 0},
                        output={"uri": "unused", "formats": ["keras", "savedmodel"]})

    job_file = tmp_path / "job.json"
    job_file.write_text(json.dumps(job(4)))  # 4 per replica, two replicas: global batch 8
    proc = subprocess.run([sys.executable, str(REPO / "tests" / "trainer" / "mirrored_run.py"), str(job_file),
                           str(tmp_path / "mirrored"), "2"], capture_output=True, text=True, timeout=600,
                          env=trainer_env(), cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["interrupted"] and report["resumed"]
    assert "2 replicas (MirroredStrategy over /device:CPU:0, /device:CPU:1): global batch 8" in report["messages"]
    # the feature pass on two replicas: every example, in order, the single-device features
    feats = report["features"]
    assert feats["replicas"] == 2
    assert (feats["train"]["n"], feats["validation"]["n"]) == (18, 6)
    for split in ("train", "validation"):
        assert feats[split]["labels_equal"] and feats[split]["max_diff"] < 1e-5

    single = tmp_path / "single"
    result = run_job(FineTuneJob.model_validate(job(8)), str(single))  # one device, the same global batch
    assert [s.epochs_completed for s in result.stages] == report["stages"] == [2, 2]
    assert result.stages[0].feature_cache
    mirrored = tmp_path / "mirrored" / "straight"
    for a, b in zip(weights(mirrored), weights(single), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
    assert report["val_accuracy"] == pytest.approx(result.metrics["val_accuracy"])
    # interrupted in the second stage and resumed under the strategy: the same model as straight through
    for a, b in zip(weights(tmp_path / "mirrored" / "interrupted"), weights(mirrored), strict=True):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    # the run says how it trained
    metrics = json.loads((mirrored / "metrics.json").read_text())
    assert metrics["runtime"]["replicas"] == 2 and metrics["runtime"]["gpus"] == 0
    assert "replicas 2" in (mirrored / "README.md").read_text()
    assert json.loads((single / "metrics.json").read_text())["runtime"]["replicas"] == 1
    assert (mirrored / "savedmodel" / "saved_model.pb").exists()


def test_one_device_means_no_strategy():
    import tensorflow as tf

    from headstart.trainer import distribution

    assert len(tf.config.list_logical_devices("CPU")) == 1 and not tf.config.list_logical_devices("GPU")
    assert distribution.replica_devices() == []
    chosen = distribution.select()
    assert chosen is distribution.SINGLE and chosen.strategy is None and chosen.replicas == 1
    assert chosen.global_batch(32) == 32
    assert distribution.select(["/device:GPU:0"]) is distribution.SINGLE
    with chosen.scope():
        assert not tf.distribute.has_strategy()
