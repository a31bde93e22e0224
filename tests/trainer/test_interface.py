"""The trainer's surface: no TensorFlow at import, the entrypoints' help, schedules, optimizers."""

from __future__ import annotations

import io
import subprocess
import sys

import pytest
from trainer_support import REPO, trainer_env

from headstart.api import OptimizerSpec


def test_importing_the_trainer_and_the_run_command_does_not_import_tensorflow():
    code = ("import sys; import headstart.trainer, headstart.trainer.cli, headstart.trainer.console; "
            "import headstart.sdk.cli.run; "
            "from headstart.trainer import Reporter, TrainResult, TrainerError; "
            "assert 'tensorflow' not in sys.modules and 'keras' not in sys.modules, 'TF imported'")
    subprocess.run([sys.executable, "-c", code], check=True, env=trainer_env(), cwd=REPO, timeout=60)


def test_module_help_works_without_tensorflow():
    code = ("import sys, runpy; sys.modules['tensorflow'] = None; sys.argv = ['x', '--help']; "
            "runpy.run_module('headstart.trainer', run_name='__main__')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=trainer_env(),
                         cwd=REPO, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "--job" in out.stdout and "--output" in out.stdout


def test_run_command_without_tensorflow_says_how_to_install(monkeypatch, tmp_path):
    import typer
    from typer.testing import CliRunner

    from headstart.sdk.cli.run import run

    app = typer.Typer()
    app.command()(run)
    app.command("noop")(lambda: None)
    monkeypatch.setitem(sys.modules, "tensorflow", None)
    result = CliRunner().invoke(app, ["run", str(tmp_path / "job.yaml")])
    assert result.exit_code == 1  # the CLI's table: a failure said in one line
    assert "pip install 'headstart[trainer]'" in result.output
    assert len(result.output.strip().splitlines()) == 1


def test_trainer_cli_rejects_a_bad_manifest_with_one_line_per_problem(tmp_path, capsys):
    from headstart.trainer.__main__ import main

    bad = tmp_path / "job.yaml"
    bad.write_text("apiVersion: headstart.dev/v1alpha1\nkind: FineTuneJob\nmetadata: {name: x}\nspec: {}\n")
    assert main(["--job", str(bad)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    missing = ("spec.baseModel", "spec.dataset", "spec.stages", "spec.output")
    assert lines == [f"error: {bad}[0]: {field}: required field is missing" for field in missing]
    assert main(["--job", str(bad), "--from-job", "nonsense"]) == 2
    assert capsys.readouterr().err == "error: --from-job 'nonsense': expected NAME=URI\n"


def test_learning_rate_schedules_follow_the_spec():
    from headstart.trainer.stages import learning_rate_at

    plain = OptimizerSpec(type="SGD", learning_rate=0.1)
    assert [learning_rate_at(plain, e, 3) for e in range(3)] == [0.1, 0.1, 0.1]
    exp = OptimizerSpec(type="SGD", learning_rate=0.1, schedule={"type": "exponential", "decayRate": 0.5})
    assert [learning_rate_at(exp, e, 3) for e in range(3)] == pytest.approx([0.1, 0.05, 0.025])
    cos = OptimizerSpec(type="Adam", learning_rate=1.0,
                        schedule={"type": "cosine", "alpha": 0.1, "warmupEpochs": 1})
    lrs = [learning_rate_at(cos, e, 5) for e in range(5)]
    assert lrs[0] == pytest.approx(0.5)  # warm-up
    assert lrs[1] == pytest.approx(1.0)
    assert lrs[1] > lrs[2] > lrs[3] > lrs[4] > 0.1


def test_optimizer_type_names_the_keras_class():
    import keras
    from pydantic import ValidationError

    from headstart.trainer.stages import make_optimizer

    sgd = make_optimizer(OptimizerSpec(type="SGD", learning_rate=0.01, momentum=0.9))
    assert isinstance(sgd, keras.optimizers.SGD) and sgd.momentum == pytest.approx(0.9)
    adamw = make_optimizer(OptimizerSpec(type="AdamW", learning_rate=0.01, weight_decay=0.01))
    assert isinstance(adamw, keras.optimizers.AdamW) and adamw.weight_decay == pytest.approx(0.01)
    with pytest.raises(ValidationError, match="Adam takes no momentum"):  # the API refuses it, not Keras
        OptimizerSpec(type="Adam", learning_rate=0.01, momentum=0.9)


def test_each_stages_learning_rate_reaches_the_keras_optimizer(folder_job, tmp_path):
    """Keras logs the optimizer's own learning rate at every epoch end: each stage's rate and schedule
    arrive there (and a following stage's optimizer does not inherit the previous one's rate)."""
    from trainer_support import Recorder

    from headstart.trainer import run_job

    stages = [
        {"name": "head", "trainBase": "none", "epochs": 2, "optimizer": {"type": "Adam", "learningRate": 0.02}},
        {"name": "tune", "trainBase": "all", "epochs": 3,
         "optimizer": {"type": "SGD", "learningRate": 0.004, "momentum": 0.5,
                       "schedule": {"type": "exponential", "decayRate": 0.5}}},
    ]
    recorder = Recorder()
    run_job(folder_job(stages=stages, output={"uri": str(tmp_path / "out"), "formats": ["keras"]}),
            reporter=recorder)
    rates = [(args[0].stage, args[0].metrics["learning_rate"]) for name, args in recorder.events
             if name == "epoch_ended"]
    assert [stage for stage, _ in rates] == ["head", "head", "tune", "tune", "tune"]
    assert [rate for _, rate in rates] == pytest.approx([0.02, 0.02, 0.004, 0.002, 0.001], rel=1e-5)


def test_line_reporter_prints_one_line_per_event():
    from headstart.trainer import LineReporter, Progress, StageResult

    buf = io.StringIO()
    rep = LineReporter(buf)
    rep.epoch_ended(Progress("head", 0, 2, 5, {"loss": 0.5, "val_accuracy": 0.75}))
    rep.stage_ended(StageResult("head", 0, 5, 3, 0.75, 1.5, stopped_early=True))
    lines = buf.getvalue().splitlines()
    assert lines[0] == "stage 1 head epoch 2/5 loss=0.5 val_accuracy=0.75"
    assert "3 epochs (stopped early)" in lines[1] and "0.7500" in lines[1]


def test_a_failing_reporter_does_not_stop_training(folder_job, tmp_path, capsys):
    from headstart.trainer import Reporter, run_job

    class Broken(Reporter):
        calls = 0

        def epoch_ended(self, progress):
            Broken.calls += 1
            raise ConnectionError("the API server is away")

    result = run_job(folder_job(output={"uri": str(tmp_path / "out"), "formats": ["keras"]}), reporter=Broken())
    assert Broken.calls == 2 and result.stages[0].epochs_completed == 2
    err = capsys.readouterr().err
    assert err.count("warning: reporter epoch_ended failed: ConnectionError: the API server is away") == 1
