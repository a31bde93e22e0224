"""The CLI's commands that need no cluster: init (valid by construction), completion, cheap start-up, and the
local backend through the same commands as a cluster's (--local)."""

from __future__ import annotations

import subprocess
import sys

import yaml
from typer.testing import CliRunner

from headstart.api import check_document
from headstart.sdk.cli import app

runner = CliRunner()


def test_init_writes_a_manifest_that_validates(tmp_path):
    result = runner.invoke(app, ["init", "flowers", "--dataset", "tfds:tf_flowers", "--output", "pvc://models/f",
                                 "--gpus", "2", "--finetune-epochs", "4"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    job, problems = check_document(doc)
    assert job is not None and not [p for p in problems if p.severity == "error"]
    assert job.spec.base_model.application == "Xception" and job.spec.resources.gpus == 2
    assert [s.train_base for s in job.spec.stages] == ["none", "all"] and job.spec.stages[1].epochs == 4
    assert job.spec.stages[1].optimizer.learning_rate < job.spec.stages[0].optimizer.learning_rate
    target = tmp_path / "flowers.yaml"
    assert runner.invoke(app, ["init", "f", "-d", "/data/photos", "-o", "s3://b/m", "-f", str(target)]).exit_code == 0
    assert check_document(yaml.safe_load(target.read_text()))[0].spec.dataset.image_folder.uri == "/data/photos"
    again = runner.invoke(app, ["init", "f", "-d", "/data/photos", "-o", "s3://b/m", "-f", str(target)])
    assert again.exit_code == 2 and "exists" in again.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["flowers.yaml"]  # no temporary file left


def test_init_refuses_bad_flags_naming_the_flag_and_writes_nothing(tmp_path):
    cases = [
        (["--output", "ftp://x/y"], "--output (spec.output.uri): unsupported scheme 'ftp'"),
        (["--output", "s3://b/m", "-a", "Xceptoin"], "--application (spec.baseModel.application): unknown "
                                                      "application 'Xceptoin' (did you mean 'Xception'?)"),
        (["--output", "s3://b/m", "--gpus", "99"], "--gpus (spec.resources.gpus): must be at most 16"),
        (["--output", "s3://b/m", "-a", "Xception", "--base", "s3://b/base.keras"], "give one of --application"),
    ]
    for flags, said in cases:
        result = runner.invoke(app, ["init", "x", "-d", "tfds:mnist", *flags, "-f", str(tmp_path / "x.yaml")])
        assert result.exit_code == 2, result.output
        assert said in result.output, result.output
    assert not list(tmp_path.iterdir())


def test_shell_completion_is_offered():
    result = subprocess.run([sys.executable, "-c", "from headstart.sdk.cli import main; main()",
                             "--show-completion", "bash"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "_HEADSTART_COMPLETE" in result.stdout.upper()


def test_help_imports_nothing_heavy():
    code = ("import sys\nsys.argv = ['headstart', '--help']\nfrom headstart.sdk.cli import main\n"
            "try:\n    main()\nexcept SystemExit:\n    pass\n"
            "heavy = sorted(m for m in ('tensorflow', 'keras', 'kubernetes', 'kopf', 'pydantic', 'yaml', "
            "'rich.markdown', 'headstart.api') if m in sys.modules)\nprint(heavy, file=sys.stderr)")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0 and "submit" in result.stdout
    assert result.stderr.strip().splitlines()[-1] == "[]"


def test_local_jobs_through_the_same_commands(tiny_base, colour_folder, tmp_path, monkeypatch):
    from trainer_support import job_dict

    monkeypatch.chdir(tmp_path)  # --local keeps its jobs in ./headstart-runs
    doc = job_dict("colours", base={"uri": tiny_base}, output={"uri": "unused", "formats": ["keras"]},
                   dataset={"imageFolder": {"uri": str(colour_folder)}, "splits": {"validation": 0.25},
                            "batchSize": 8})
    (tmp_path / "job.yaml").write_text(yaml.safe_dump(doc))
    result = runner.invoke(app, ["submit", "-f", "job.yaml", "--local", "--wait", "--timeout", "600"])
    assert result.exit_code == 0, result.output
    assert result.stdout.startswith("colours Succeeded")
    listed = runner.invoke(app, ["list", "--local"])
    assert listed.stdout.splitlines()[-1].split()[:2] == ["colours", "Succeeded"]
    why = runner.invoke(app, ["why", "colours", "--local"])
    assert why.stdout.startswith("colours is Succeeded (done: the model is written)")
    logs = runner.invoke(app, ["logs", "colours", "--local"])
    assert "stage 1 head epoch 2/2" in logs.stdout
    fetched = runner.invoke(app, ["fetch", "colours", "--local", "--to", "model"])
    assert fetched.exit_code == 0 and (tmp_path / "model" / "model.keras").is_file()
    missing = runner.invoke(app, ["get", "nobody", "--local"])
    assert missing.exit_code == 1 and "no local job nobody" in missing.stderr
