"""The commands on jobs, through the local backend's records (``./headstart-runs/.jobs/NAME/``, as
``Client(backend="local")`` writes them; no trainer runs here): -o wide and name, several names at once, the
log's tail, a watch that draws nothing until it has the job, `why --local` naming --local commands."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml
from typer.testing import CliRunner

from headstart.sdk import exit_codes
from headstart.sdk.cli import app

REPO = Path(__file__).resolve().parents[2]
runner = CliRunner()


def record(root: Path, name: str, status: dict, log: list[str] = ()) -> None:
    """A local job as the local backend keeps it, with no trainer process (a finished or suspended job)."""
    doc = yaml.safe_load((REPO / "examples" / "flowers-xception.yaml").read_text())
    doc["metadata"] = {"name": name, "labels": {"team": "vision"}}
    folder = root / ".jobs" / name
    folder.mkdir(parents=True)
    (folder / "job.yaml").write_text(yaml.safe_dump(doc))
    (folder / "status.json").write_text(json.dumps(status))
    (folder / "events.jsonl").write_text(json.dumps({"time": "2026-01-01T00:00:00Z", "type": "Normal",
                                                     "reason": "Submitted", "message": f"local job {name}"}) + "\n")
    (folder / "log").write_text("".join(f"{line}\n" for line in log))


@pytest.fixture
def jobs(tmp_path, monkeypatch) -> Path:
    monkeypatch.chdir(tmp_path)  # --local keeps its jobs in ./headstart-runs
    root = tmp_path / "headstart-runs"
    model = {"uri": str(root / "done"), "sha256": "a" * 64, "formats": ["keras"], "classNames": ["a", "b"],
             "pictures": ["confusion.png", "curves.png"]}
    record(root, "done", {"phase": "Succeeded", "reason": "Completed", "message": "the model is written",
                          "stage": "finetune", "epoch": 10, "epochs": 10, "metrics": {"val_accuracy": 0.875},
                          "stages": [{"name": "head", "epochsCompleted": 5, "candidates": [
                              {"learningRate": lr, "dropout": 0.0, "monitor": "val_loss", "value": loss,
                               "epochsCompleted": 5, "chosen": lr == 0.1}
                              for lr, loss in ((0.01, 0.9), (0.1, 0.4), (1.0, None))]},
                              {"name": "finetune", "epochsCompleted": 10}],
                          "model": model}, [f"line {i}" for i in range(1, 8)])
    record(root, "paused", {"phase": "Suspended", "reason": "Suspended", "message": "suspended"}, ["one"])
    return root


def headstart(*args: str):
    return runner.invoke(app, list(args))


def test_list_wide_and_name(jobs):
    table = headstart("list", "--local").stdout.splitlines()
    assert table[0].split() == ["NAME", "PHASE", "REASON", "STAGE", "EPOCH", "VAL-ACC", "AGE"]
    wide = headstart("list", "--local", "-o", "wide").stdout.splitlines()
    assert wide[0].split() == ["NAME", "PHASE", "REASON", "STAGE", "EPOCH", "VAL-ACC", "AGE", "TRAINING-JOB",
                               "MODEL", "MESSAGE"]
    done = next(line.split() for line in wide if line.startswith("done "))
    assert done[:5] == ["done", "Succeeded", "Completed", "finetune", "10/10"] and str(jobs / "done") in done
    assert headstart("list", "--local", "-o", "name").stdout.splitlines() == [
        "finetunejob.headstart.dev/done", "finetunejob.headstart.dev/paused"]
    assert headstart("get", "paused", "--local", "-o", "name").stdout == "finetunejob.headstart.dev/paused\n"
    assert json.loads(headstart("get", "done", "--local", "-o", "json").stdout)["status"]["phase"] == "Succeeded"


def test_get_says_what_a_sweep_chose_and_where_the_model_cards_pictures_are(jobs):
    shown = headstart("get", "done", "--local").stdout.splitlines()
    assert shown[0].split()[0] == "NAME" and any(line.split()[:2] == ["done", "Succeeded"] for line in shown)
    assert shown[-3:] == ["sweep head: learningRate 0.1, dropout 0 continued, the best of 3 (val_loss 0.4000)",
                          f"confusion.png: {jobs / 'done'}/confusion.png", f"curves.png: {jobs / 'done'}/curves.png"]
    assert "png" not in headstart("get", "paused", "--local").stdout  # no model, no pictures
    assert "curves.png: " not in headstart("get", "done", "--local", "-o", "yaml").stdout


def test_delete_several_names_as_kubectl_does(jobs):
    result = headstart("delete", "done", "nobody", "paused", "--local")
    assert result.exit_code == exit_codes.FAILED
    assert result.stdout.splitlines() == ["finetunejob/done deleted", "finetunejob/paused deleted"]
    assert result.stderr.strip() == "headstart delete: no local job nobody under headstart-runs"
    assert not list((jobs / ".jobs").iterdir())


def test_logs_tail(jobs):
    assert headstart("logs", "done", "--local", "--tail", "2").stdout.splitlines() == ["line 6", "line 7"]
    assert headstart("logs", "done", "--local", "-f", "--tail", "3").stdout.splitlines() == [
        "line 5", "line 6", "line 7"]  # followed: the job is done, so the log ends there
    assert headstart("logs", "done", "--local", "--tail", "0").stdout == ""
    assert len(headstart("logs", "done", "--local").stdout.splitlines()) == 7
    bad = headstart("logs", "done", "--local", "--tail", "-1")
    assert bad.exit_code == exit_codes.USAGE and "--tail" in bad.output


def test_watch_draws_nothing_before_it_has_the_job_and_times_out_with_3(jobs):
    missing = headstart("watch", "nobody", "--local")
    assert missing.exit_code == exit_codes.FAILED
    assert missing.stderr == "headstart watch: no local job nobody under headstart-runs\n"
    waited = headstart("watch", "paused", "--local", "--timeout", "0.5")
    assert waited.exit_code == exit_codes.TIMED_OUT
    assert "paused: Suspended (Suspended)" in waited.stderr  # the view, once it had the job
    assert waited.stderr.strip().splitlines()[-1] == "headstart watch: local job paused is still Suspended after 0.5s"


def test_why_local_suggests_commands_with_local(jobs):
    why = headstart("why", "paused", "--local")
    assert why.exit_code == 0, why.output
    assert why.stdout.splitlines()[-1] == ("next: spec.runPolicy.suspend is true: `headstart resume paused --local` "
                                           "continues from the last checkpoint")


def test_explain_adds_local_to_cluster_commands_only():
    from headstart.sdk.explain import for_local

    assert for_local("`headstart logs x` shows why; then `headstart validate FILE`") == \
        "`headstart logs x --local` shows why; then `headstart validate FILE`"


def test_the_cli_shows_an_invalid_stored_job():
    from headstart.sdk.cli.tables import row, wire
    from headstart.sdk.explain import explain, render
    from headstart.sdk.results import job_from

    job = job_from({"apiVersion": "headstart.dev/v1alpha1", "kind": "FineTuneJob",
                    "metadata": {"name": "flowers", "namespace": "team-a", "uid": "u-1"},
                    "spec": {"baseModel": {"application": "Xception"}},
                    "status": {"phase": "Failed", "reason": "InvalidSpec"}})
    assert row(job)[:3] == ["flowers", "Failed", "InvalidSpec"]
    assert wire(job)["spec"] == {"baseModel": {"application": "Xception"}}
    lines = render(explain(job, []))
    assert "  invalid spec: spec.dataset: required field is missing" in lines


def test_ctrl_c_is_130_and_one_line(jobs):
    """A followed log of a job still running (its trainer's pid: this test's own process), interrupted."""
    import os
    import signal
    import subprocess
    import sys

    (jobs / ".jobs" / "done" / "pid").write_text(str(os.getpid()))
    # SIGINT as a terminal's Ctrl-C delivers it: a shell starts a background job (`make test &`, CI) with
    # SIGINT ignored, which its children inherit, and Python installs no KeyboardInterrupt handler then
    follow = subprocess.Popen([sys.executable, "-c", "from headstart.sdk.cli import main; main()", "logs", "done",
                               "-f", "--local"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              env={**os.environ, "PYTHONUNBUFFERED": "1"},
                              preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert follow.stdout.readline() == "line 1\n"  # it follows now
        follow.send_signal(signal.SIGINT)
        assert follow.wait(timeout=60) == exit_codes.INTERRUPTED
        assert follow.stderr.read() == "headstart logs: interrupted\n"
    finally:
        follow.kill()
