"""A frozen stage's sweep trains every candidate on the features computed once; the best continues, and it
is the model a job with the best learning rate alone would have made."""

from __future__ import annotations

import json
import os
import signal

import pytest
from trainer_support import Recorder

RATES = [0.0005, 0.05, 3.0]
FROZEN = {"name": "head", "epochs": 3, "optimizer": {"type": "Adam", "learningRate": 0.01}}
TUNE = {"name": "tune", "trainBase": "all", "epochs": 2, "optimizer": {"type": "SGD", "learningRate": 0.005}}


def stages(sweep: dict | None, learning_rate: float = 0.01) -> list[dict]:
    head = {**FROZEN, "optimizer": {**FROZEN["optimizer"], "learningRate": learning_rate}}
    return [{**head, "sweep": sweep} if sweep else head, TUNE]


def metrics_of(out) -> dict:
    return json.loads((out / "metrics.json").read_text())


def test_the_best_candidate_continues_and_equals_a_job_with_its_learning_rate_alone(folder_job, tmp_path):
    from headstart.trainer import run_job

    rec = Recorder()
    out = tmp_path / "swept"
    run_job(folder_job(name="swept", stages=stages({"learningRates": RATES})), str(out), rec)
    swept = metrics_of(out)
    candidates = swept["stages"][0]["candidates"]
    assert [c["learning_rate"] for c in candidates] == RATES
    assert all(c["monitor"] == "val_loss" and c["epochs_completed"] == 3 for c in candidates)
    assert [c["chosen"] for c in candidates].count(True) == 1
    finite = [c for c in candidates if c["value"] is not None]
    chosen = next(c for c in candidates if c["chosen"])
    assert chosen["value"] == min(c["value"] for c in finite)
    assert len({round(c["value"], 6) for c in finite}) == len(finite), "the candidates trained alike"
    messages = [args[0] for name, args in rec.events if name == "message"]
    assert sum(m.startswith("sweep ") for m in messages) == len(RATES)
    assert sum("computing the frozen base's features once" in m for m in messages) == 1

    for rate in RATES:  # each alone, as a job of its own with the same seed
        alone = tmp_path / f"alone-{rate}"
        run_job(folder_job(name="swept", stages=stages(None, rate)), str(alone))
        separate = metrics_of(alone)
        history = separate["stages"][0]["epochs_history"]
        candidate = next(c for c in candidates if c["learning_rate"] == rate)
        if candidate["value"] is not None:
            assert candidate["value"] == pytest.approx(history[-1]["val_loss"], rel=1e-5), rate
        if candidate["chosen"]:  # and what continued is that job: the same fine-tuned model at the end
            for key in ("val_loss", "val_accuracy"):
                assert swept["final"][key] == pytest.approx(separate["final"][key], rel=1e-5), key
            assert swept["stages"][0]["epochs_history"] == history

    card = (out / "README.md").read_text()
    assert f"Stage head swept {len(RATES)} candidates" in card
    assert f"Adam lr {chosen['learning_rate']:g} (swept)" in card


def test_status_lists_the_candidates(folder_job, tmp_path):
    from headstart.trainer import run_job
    from headstart.trainer.progress import SnapshotReporter

    snapshots = []
    reporter = SnapshotReporter(lambda snapshot, urgent: snapshots.append(snapshot))
    sweep = {"learningRateRange": {"min": 0.001, "max": 0.1, "count": 3}, "dropouts": [0.0, 0.5],
             "monitor": "val_accuracy"}
    run_job(folder_job(name="dropouts", stages=stages(sweep)[:1]), str(tmp_path / "out"), reporter)
    stage = snapshots[-1].stages[0]
    assert [(c.learning_rate, c.dropout) for c in stage.candidates] == \
        [(0.001, 0.0), (0.01, 0.0), (0.1, 0.0), (0.001, 0.5), (0.01, 0.5), (0.1, 0.5)]
    assert {c.monitor for c in stage.candidates} == {"val_accuracy"}
    chosen = [c for c in stage.candidates if c.chosen]
    assert len(chosen) == 1 and chosen[0].value == max(c.value for c in stage.candidates)
    wire = snapshots[-1].model_dump(by_alias=True, mode="json")
    assert {"learningRate", "dropout", "monitor", "value", "epochsCompleted", "chosen"} <= \
        set(wire["stages"][0]["candidates"][0])

    import keras

    model = keras.saving.load_model(tmp_path / "out" / "model.keras")
    assert model.get_layer("dropout").rate == chosen[0].dropout  # the chosen dropout is the model's


def test_sigterm_between_candidates_stops_with_the_next_run_sweeping_again(folder_job, tmp_path):
    from headstart.trainer import run_job, termination
    from headstart.trainer.errors import TerminatedError

    class Terminating(Recorder):
        def __getattr__(self, name):
            record = super().__getattr__(name)
            if name != "message":
                return record

            def message(text):
                record(text)
                if text.startswith("sweep 1/"):
                    os.kill(os.getpid(), signal.SIGTERM)  # as the kubelet does; the flag is set, training goes on
            return message

    out = tmp_path / "out"
    job = folder_job(name="terminated", stages=stages({"learningRates": RATES}))
    with termination.graceful(), pytest.raises(TerminatedError, match="before sweep candidate 2 of 3"):
        run_job(job, str(out), Terminating())
    rec = Recorder()
    run_job(job, str(out), rec)
    messages = [args[0] for name, args in rec.events if name == "message"]
    assert sum(m.startswith("sweep ") for m in messages) == len(RATES)
    assert [c["chosen"] for c in metrics_of(out)["stages"][0]["candidates"]].count(True) == 1
