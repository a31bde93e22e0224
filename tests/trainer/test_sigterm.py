"""SIGTERM (a pod stopped, evicted by a drain, preempted): the trainer finishes the step, checkpoints the position
inside the epoch, exits 143 (transient); the next run resumes at the next batch of that epoch, in its order."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter

import pytest
from trainer_support import REPO, job_dict, trainer_env, wait_for_line, write_job_file

from headstart.api.exitcodes import ExitCode, is_permanent

EPOCHS = 3
STAGE = {"name": "tune", "trainBase": "all", "epochs": EPOCHS, "optimizer": {"type": "SGD", "learningRate": 0.02,
                                                                            "momentum": 0.9}}


def start(job_file, out, log):
    return subprocess.Popen([sys.executable, "-m", "headstart.trainer", "--job", str(job_file), "--output",
                             str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=trainer_env(HEADSTART_BATCH_LOG=str(log), HEADSTART_DEBUG="1"), cwd=REPO)


def batches_of(log, epoch: int) -> dict[int, list[int]]:
    """Batch position -> the images' pixel sums, as the pipeline made them for ``epoch``, in order."""
    found: dict[int, list[int]] = {}
    for line in log.read_text().splitlines():
        entry = json.loads(line)
        if entry["epoch"] == epoch:
            assert entry["batch"] not in found, f"epoch {epoch} batch {entry['batch']} made twice"
            found[entry["batch"]] = entry["images"]
    return found


def history(out) -> list[dict]:
    return json.loads((out / "metrics.json").read_text())["stages"][0]["epochs_history"]


def test_sigterm_mid_epoch_checkpoints_exits_transient_and_the_next_run_sees_each_example_once(
        tiny_model_uri, image_folder, tmp_path):
    doc = job_dict("graceful", base={"uri": tiny_model_uri}, stages=[STAGE],
                   dataset={"imageFolder": {"uri": str(image_folder)}, "splits": {"validation": 0.25},
                            "batchSize": 2, "shuffleBuffer": 64},
                   output={"uri": str(tmp_path / "unused"), "formats": ["keras"]})
    job_file = write_job_file(tmp_path / "job.yaml", doc)

    reference = tmp_path / "reference"  # the same job, never interrupted
    done = subprocess.run([sys.executable, "-m", "headstart.trainer", "--job", str(job_file), "--output",
                           str(reference)], capture_output=True, text=True, cwd=REPO, timeout=300,
                          env=trainer_env(HEADSTART_BATCH_LOG=str(tmp_path / "reference.log")))
    assert done.returncode == 0, done.stderr[-2000:]

    out = tmp_path / "out"
    proc = start(job_file, out, tmp_path / "first.log")
    try:
        wait_for_line(proc, "stage 1 tune:", timeout=240)  # said before Keras starts the stage's first step
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        proc.kill()
    assert proc.returncode == ExitCode.TERMINATED, stderr[-2000:]
    assert not is_permanent(proc.returncode)
    assert "terminated (SIGTERM) in stage 1 tune in epoch" in stderr and "Traceback" not in stderr
    state = json.loads((out / "checkpoints" / "state.json").read_text())
    epoch, trained = state["current"]["epochs_done"], state["current"]["batches_done"]
    full = batches_of(tmp_path / "reference.log", epoch)
    steps = len(full)
    assert steps == 9 and 0 < trained < steps, f"stopped inside epoch {epoch + 1}: {trained} of {steps} batches"

    proc = start(job_file, out, tmp_path / "second.log")
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr[-2000:]
    assert f"resuming epoch {epoch + 1} of stage 1 after batch {trained} of {steps}" in stdout
    epochs_run = [line for line in stdout.splitlines() if line.startswith("stage 1 tune epoch")]
    assert [line.split()[4] for line in epochs_run] == [f"{e}/{EPOCHS}" for e in range(epoch + 1, EPOCHS + 1)]

    first, second = batches_of(tmp_path / "first.log", epoch), batches_of(tmp_path / "second.log", epoch)
    before = [first[b] for b in range(1, trained + 1)]  # the pipeline may have made more; these were trained
    after = [second[b] for b in sorted(second)]
    assert sorted(second) == list(range(trained + 1, steps + 1)), "the resumed epoch skips what was trained"
    assert before + after == [full[b] for b in range(1, steps + 1)], "the epoch's order, across the two runs"
    images = Counter(s for batch in before + after for s in batch)
    assert images == Counter(s for batch in full.values() for s in batch) and set(images.values()) == {1}

    got, want = history(out), history(reference)
    assert [e["epoch"] for e in got] == list(range(1, EPOCHS + 1))
    for resumed, uninterrupted in zip(got, want):  # the interrupted epoch's metrics continue across the runs
        for name in ("loss", "accuracy", "val_loss"):
            assert resumed[name] == pytest.approx(uninterrupted[name], rel=1e-4, abs=1e-6), (name, resumed)


def test_each_epochs_order_depends_on_the_seed_and_the_epoch_only():
    import tensorflow as tf

    from headstart.trainer import data

    images = tf.cast(tf.range(20), tf.uint8)[:, None, None, None] * tf.ones([1, 2, 2, 3], tf.uint8)
    ds = tf.data.Dataset.from_tensor_slices((images, tf.range(20)))

    def epoch_labels(order):
        return [int(y) for _, labels in data.train_batches(ds, 3, order, shuffle_buffer=20, seed=4) for y in labels]

    order = data.EpochOrder()
    passes = {}
    for epoch in range(3):  # one process, epoch after epoch
        order.epoch = epoch
        passes[epoch] = epoch_labels(order)
    assert passes[0] != passes[2] and sorted(passes[2]) == list(range(20))
    fresh = data.EpochOrder(epoch=2)  # another process, starting at epoch 2
    assert epoch_labels(fresh) == passes[2]
    resumed = data.EpochOrder(epoch=2, resume_epoch=2, resume_batches=4)
    assert epoch_labels(resumed) == passes[2][12:]


def test_a_checkpoint_of_the_previous_format_still_resumes():
    from headstart.trainer.checkpoints import State

    old = {"format": 2, "job": "j", "spec_sha256": "s", "stages": [], "weights": "w.npz", "files": {"w.npz": "epoch"},
           "current": {"index": 0, "epochs_done": 2, "history": {}, "duration_seconds": 1.0, "optimizer": None,
                       "early_stopping": None, "best_weights": None, "head_weights": None, "stopped": False}}
    state = State.from_json(json.dumps(old).encode())
    assert state.current.epochs_done == 2 and state.current.batches_done == 0
    assert json.loads(state.to_json())["format"] == 3


class Batches:
    """A Reporter of the batches trained in each epoch (numbers from 1) that raises SIGTERM in this process
    after batch ``at`` = (epoch, batch)."""

    def __init__(self, at: tuple[int, int] | None = None):
        self.at = at
        self.epoch = 0
        self.seen: dict[int, list[int]] = {}

    def __getattr__(self, name):
        return lambda *args: None

    def stage_started(self, stage, initial_epoch, steps):
        self.epoch = initial_epoch + 1

    def batch_ended(self, stage, batch, steps):
        self.seen.setdefault(self.epoch, []).append(batch)
        if (self.epoch, batch) == self.at:
            signal.raise_signal(signal.SIGTERM)  # to this thread, the main one: handled before the next batch

    def epoch_ended(self, progress):
        self.epoch = progress.epoch + 1


def test_a_run_stopped_inside_a_later_epoch_resumes_it_and_trains_every_following_epoch_in_full(folder_job,
                                                                                               tmp_path):
    from headstart.trainer import run_job, termination
    from headstart.trainer.errors import TerminatedError

    stage = {**STAGE, "earlyStopping": {"monitor": "val_loss", "patience": 50}}  # restores the best weights
    dataset = {"imageFolder": {"uri": str(folder_job().spec.dataset.image_folder.uri)},
               "splits": {"validation": 0.25}, "batchSize": 2}

    def job(out):
        return folder_job(stages=[stage], dataset=dataset, output={"uri": str(out), "formats": ["keras"]})

    reference = run_job(job(tmp_path / "reference"), reporter=Batches())
    first, second = Batches(at=(2, 5)), Batches()
    with termination.graceful(), pytest.raises(TerminatedError, match="in epoch 2 after batch 5"):
        run_job(job(tmp_path / "out"), reporter=first)
    resumed = run_job(job(tmp_path / "out"), reporter=second)
    assert resumed.resumed
    assert first.seen == {1: list(range(1, 10)), 2: [1, 2, 3, 4, 5]}
    assert second.seen == {2: [6, 7, 8, 9], 3: list(range(1, 10))}, "every epoch after the resumed one in full"
    (got,), (want,) = resumed.stages, reference.stages
    assert got.epochs_completed == EPOCHS and len(got.history["loss"]) == EPOCHS
    for name in ("loss", "accuracy", "val_loss", "val_accuracy"):
        assert got.history[name] == pytest.approx(want.history[name], rel=1e-4, abs=1e-6), name
    assert resumed.metrics["val_loss"] == pytest.approx(min(got.history["val_loss"]), rel=1e-4)


def test_a_stage_on_cached_features_stops_at_the_end_of_the_epoch_and_resumes_after_it(folder_job, tmp_path):
    from headstart.trainer import run_job, termination
    from headstart.trainer.errors import TerminatedError

    stage = {"name": "head", "trainBase": "none", "epochs": EPOCHS, "optimizer": {"type": "Adam", "learningRate": 0.05}}
    job = folder_job(stages=[stage], output={"uri": str(tmp_path / "out"), "formats": ["keras"]})
    first = Batches(at=(2, 3))  # one call runs an epoch's 3 batches: its only batch end is the epoch's last
    with termination.graceful(), pytest.raises(TerminatedError, match="in stage 1 head after epoch 2"):
        run_job(job, reporter=first)
    state = json.loads((tmp_path / "out" / "checkpoints" / "state.json").read_text())
    assert state["current"]["epochs_done"] == 2 and state["current"]["batches_done"] == 0
    second = Batches()
    resumed = run_job(job, reporter=second)
    assert resumed.stages[0].feature_cache and resumed.stages[0].epochs_completed == EPOCHS
    assert set(first.seen) == {1, 2} and set(second.seen) == {3}
