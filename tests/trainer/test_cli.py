"""`headstart run`: local runs with rich progress, a summary, and one-line failures."""

from __future__ import annotations

import pytest
from trainer_support import job_dict, write_job_file

from headstart.sdk.exit_codes import FAILED

ONE_EPOCH = [{"name": "head", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.01}}]


@pytest.fixture
def cli():
    import typer
    from typer.testing import CliRunner

    from headstart.sdk.cli.run import run

    app = typer.Typer()
    app.command("run")(run)
    app.command("other")(lambda: None)  # two commands: 'run' stays a subcommand as in the real CLI
    runner = CliRunner()
    return lambda *args: runner.invoke(app, ["run", *args])


def test_headstart_run_trains_into_headstart_runs_and_resolves_from_job(cli, tiny_model_uri, image_folder,
                                                                         tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    dataset = {"imageFolder": {"uri": str(image_folder)}, "splits": {"validation": 0.25}, "batchSize": 8}
    parent = write_job_file(tmp_path / "parent.yaml", job_dict(
        "parent", base={"uri": tiny_model_uri}, dataset=dataset, stages=ONE_EPOCH,
        output={"uri": "s3://bucket/for-the-cluster", "formats": ["keras"]}))
    result = cli(str(parent))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "headstart-runs" / "parent" / "manifest.json").exists()
    for words in ("stage", "epochs", "best val accuracy", "head", "1/1", "val_accuracy="):
        assert words in result.output

    child = write_job_file(tmp_path / "child.yaml", job_dict(
        "child", base={"fromJob": "parent"}, dataset=dataset, stages=ONE_EPOCH,
        output={"uri": "s3://bucket/child", "formats": ["keras"]}))
    result = cli(str(child), "--output-uri", str(tmp_path / "elsewhere"))
    assert result.exit_code == 0, result.output
    assert (tmp_path / "elsewhere" / "manifest.json").exists()


def one_line_failure(result) -> str:
    assert result.exit_code != 0
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    return lines[0]


def test_headstart_run_bad_spec_is_one_line(cli, tmp_path):
    bad = job_dict("bad", base={"application": "Xceptoin"}, dataset={"imageFolder": {"uri": "/x"}})
    line = one_line_failure(cli(str(write_job_file(tmp_path / "bad.yaml", bad))))
    assert "did you mean 'Xception'" in line


def test_headstart_run_missing_dataset_is_one_line(cli, tiny_model_uri, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    job = job_dict("nodata", base={"uri": tiny_model_uri}, dataset={"imageFolder": {"uri": str(tmp_path / "no")}})
    result = cli(str(write_job_file(tmp_path / "job.yaml", job)))
    assert result.exit_code == FAILED  # the CLI's table: the trainer's own code (11) is the operator's business
    line = one_line_failure(result)
    assert line.startswith("error: dataset.imageFolder: no folder at")


#: What TensorFlow's native start-up prints on a machine without a GPU (before absl logging is set up).
START_UP_NOISE = ("absl::InitializeLog", "cuInit", "cudart_stub", "E0000", "I0000")


def test_a_local_run_hides_tensorflows_start_up_lines_unless_verbose(tiny_model_uri, image_folder, tmp_path):
    import subprocess
    import sys

    from trainer_support import REPO, trainer_env

    dataset = {"imageFolder": {"uri": str(image_folder)}, "splits": {"validation": 0.25}, "batchSize": 8}
    job = write_job_file(tmp_path / "job.yaml", job_dict(
        "quiet", base={"uri": tiny_model_uri}, dataset=dataset, stages=ONE_EPOCH,
        output={"uri": str(tmp_path / "unused"), "formats": ["keras"]}))
    env = {k: v for k, v in trainer_env().items() if k != "TF_CPP_MIN_LOG_LEVEL"}  # TensorFlow's default

    def run(*flags: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-c", "from headstart.sdk.cli import main; main()", "run", str(job), *flags],
            capture_output=True, text=True, env=env, cwd=REPO, timeout=300)

    quiet = run("--output-uri", str(tmp_path / "quiet"))
    assert quiet.returncode == 0, quiet.stderr[-2000:]
    assert not [line for line in quiet.stderr.splitlines() if any(n in line for n in START_UP_NOISE)], quiet.stderr
    verbose = run("--output-uri", str(tmp_path / "verbose"), "--verbose")
    assert verbose.returncode == 0, verbose.stderr[-2000:]
    assert any(noise in verbose.stderr for noise in START_UP_NOISE), verbose.stderr  # they exist; now shown
