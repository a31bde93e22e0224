"""The CLI's commands that need no cluster: init (valid by construction), completion, cheap start-up, and the
local backend through the same commands as a cluster's (--local)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import yaml
from typer.testing import CliRunner

from headstart.api import check_document
from headstart.sdk.cli import app

runner = CliRunner()


def test_init_writes_a_manifest_that_validates(tmp_path):
    result = runner.invoke(app, ["init", "flowers", "--dataset", "tfds:tf_flowers", "--output-uri", "pvc://models/f",
                                 "--gpus", "2", "--finetune-epochs", "4"])
    assert result.exit_code == 0, result.output
    doc = yaml.safe_load(result.stdout)
    job, problems = check_document(doc)
    assert job is not None and not [p for p in problems if p.severity == "error"]
    assert job.spec.base_model.application == "Xception" and job.spec.resources.gpus == 2
    assert [s.train_base for s in job.spec.stages] == ["none", "all"] and job.spec.stages[1].epochs == 4
    assert job.spec.stages[1].optimizer.learning_rate < job.spec.stages[0].optimizer.learning_rate
    target = tmp_path / "flowers.yaml"
    made = ["init", "f", "-d", "/data/photos", "--output-uri", "s3://b/m", "-f", str(target)]
    assert runner.invoke(app, made).exit_code == 0
    assert check_document(yaml.safe_load(target.read_text()))[0].spec.dataset.image_folder.uri == "/data/photos"
    again = runner.invoke(app, made)
    assert again.exit_code == 2 and "exists" in again.stderr
    assert [p.name for p in tmp_path.iterdir()] == ["flowers.yaml"]  # no temporary file left


def test_init_writes_the_classic_recipe_from_flags():
    result = runner.invoke(app, [
        "init", "flowers", "-d", "tfds:tf_flowers", "--output-uri", "pvc://models/f",
        "--head-epochs", "5", "--head-optimizer", "SGD", "--head-learning-rate", "0.2", "--head-momentum", "0.9",
        "--finetune-epochs", "10", "--finetune-optimizer", "SGD", "--finetune-learning-rate", "0.01",
        "--finetune-momentum", "0.9", "--finetune-train-base", "top:20"])
    assert result.exit_code == 0, result.output
    job, problems = check_document(yaml.safe_load(result.stdout))
    assert job is not None and not problems, problems
    head, tune = job.spec.stages
    assert (head.train_base, head.epochs, head.optimizer.type, head.optimizer.learning_rate,
            head.optimizer.momentum) == ("none", 5, "SGD", 0.2, 0.9)
    assert (tune.train_base, tune.epochs, tune.optimizer.type, tune.optimizer.learning_rate,
            tune.optimizer.momentum) == ("top:20", 10, "SGD", 0.01, 0.9)
    only_head = runner.invoke(app, ["init", "x", "-d", "tfds:mnist", "--output-uri", "s3://b/m",
                                    "--finetune-epochs", "0"])
    assert [s["name"] for s in yaml.safe_load(only_head.stdout)["spec"]["stages"]] == ["head"]


def test_init_refuses_bad_flags_naming_the_flag_and_writes_nothing(tmp_path):
    cases = [
        (["--output-uri", "ftp://x/y"], "headstart init: --output-uri: unsupported scheme 'ftp'"),
        (["-a", "Xceptoin"], "headstart init: --application: unknown application 'Xceptoin' (did you mean "
                             "'Xception'?)"),
        (["--gpus", "99"], "headstart init: --gpus must be at most 16"),
        (["--head-epochs", "0"], "headstart init: --head-epochs must be greater than 0"),
        (["--finetune-learning-rate", "-1"], "headstart init: --finetune-learning-rate must be greater than 0"),
        (["--head-momentum", "0.9"], "headstart init: --head-momentum: optimizer type Adam takes no momentum"),
        (["--finetune-train-base", "some"], "headstart init: --finetune-train-base must be none, all, top:N or "
                                            "from:LAYER (got 'some')"),
        (["--head-optimizer", "Adagrad"], "headstart init: --head-optimizer must be one of 'SGD', 'Adam', "
                                          "'AdamW' or 'RMSprop' (got 'Adagrad')"),
        (["-a", "Xception", "--base", "s3://b/base.keras"], "give one of --application"),
    ]
    for flags, said in cases:
        result = runner.invoke(app, ["init", "x", "-d", "tfds:mnist", "--output-uri", "s3://b/m", *flags,
                                     "-f", str(tmp_path / "x.yaml")])
        assert result.exit_code == 2, result.output
        assert said in result.output, result.output
        assert "spec." not in result.output  # the flag, not the field
    assert not list(tmp_path.iterdir())


def test_init_warns_naming_the_flag_and_still_writes():
    result = runner.invoke(app, ["init", "x", "-d", "tfds:mnist", "--output-uri", "s3://b/m",
                                 "--finetune-learning-rate", "0.01"])
    assert result.exit_code == 0 and yaml.safe_load(result.stdout)["metadata"]["name"] == "x"
    assert result.stderr.startswith("headstart init: warning: --finetune-learning-rate: fine-tuning stage ")


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
    result = runner.invoke(app, ["submit", "-f", "job.yaml", "--local"])
    assert result.exit_code == 0, result.output
    assert result.stdout == "colours\n"
    assert result.stderr.splitlines() == [
        "finetunejob/colours created",
        "a background trainer runs it here (its record: headstart-runs/.jobs/colours/); follow it with `headstart "
        "watch colours --local` or `headstart logs colours -f --local`, stop it with `headstart suspend colours "
        "--local` or `headstart delete colours --local`"]
    watched = runner.invoke(app, ["watch", "colours", "--local", "--timeout", "600"])
    assert watched.exit_code == 0, watched.output
    assert watched.stdout.startswith("colours Succeeded")
    listed = runner.invoke(app, ["list", "--local"])
    assert listed.stdout.splitlines()[-1].split()[:2] == ["colours", "Succeeded"]
    why = runner.invoke(app, ["why", "colours", "--local"])
    assert why.stdout.startswith("colours is Succeeded (done: the model is written)")
    logs = runner.invoke(app, ["logs", "colours", "--local"])
    assert "stage 1 head epoch 2/2" in logs.stdout
    noise = ("absl::InitializeLog", "cuInit", "cudart_stub", "E0000", "I0000")  # as quiet as `headstart run`
    assert not [line for line in logs.stdout.splitlines() if any(n in line for n in noise)], logs.stdout
    fetched = runner.invoke(app, ["fetch", "colours", "--local", "--to", "model"])
    assert fetched.exit_code == 0 and (tmp_path / "model" / "model.keras").is_file()
    assert (tmp_path / "model" / "curves.png").is_file() and (tmp_path / "model" / "confusion.png").is_file()
    shown = runner.invoke(app, ["get", "colours", "--local"]).stdout.splitlines()
    as_json = runner.invoke(app, ["get", "colours", "--local", "-o", "json"]).stdout
    output = json.loads(as_json)["status"]["model"]["uri"]
    assert shown[-2:] == [f"confusion.png: {output}/confusion.png", f"curves.png: {output}/curves.png"]
    assert (Path(output) / "curves.png").is_file()
    missing = runner.invoke(app, ["get", "nobody", "--local"])
    assert missing.exit_code == 1 and "no local job nobody" in missing.stderr
