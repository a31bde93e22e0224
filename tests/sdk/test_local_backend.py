"""Client(backend="local"): the cluster's calls, trained on this machine by the local trainer, with the same
typed results (FineTuneJob and its status), errors and waits."""

from __future__ import annotations

import pytest
from trainer_support import job_dict

from headstart.sdk import Client, InvalidJob, JobFailed, NotFound, Timeout

STAGES = [{"name": "head", "trainBase": "none", "epochs": 2, "optimizer": {"type": "Adam", "learningRate": 0.02}},
          {"name": "tune", "trainBase": "all", "epochs": 1, "optimizer": {"type": "Adam", "learningRate": 0.001}}]


def _job(name: str, base: str, folder, **spec) -> dict:
    return job_dict(name, base={"uri": base}, stages=STAGES, output={"uri": "unused", "formats": ["keras"]},
                    dataset={"imageFolder": {"uri": str(folder)}, "splits": {"validation": 0.25}, "batchSize": 8},
                    **spec)


def test_a_local_job_submits_trains_reports_and_fetches(tiny_base, colour_folder, tmp_path):
    client = Client(backend="local", local_root=tmp_path / "runs")
    name = client.submit(_job("colours", tiny_base, colour_folder))
    seen: list[str] = []
    job = client.wait(name, timeout=600, callback=lambda j: seen.append(j.status.phase.value))
    assert job.status.phase.value == "Succeeded" and seen[-1] == "Succeeded"
    assert [s.name for s in job.status.stages] == ["head", "tune"]
    assert [s.epochs_completed for s in job.status.stages] == [2, 1]
    assert 0.0 <= job.status.metrics["val_accuracy"] <= 1.0
    assert job.status.model.uri == str((tmp_path / "runs" / "colours").resolve())
    log = list(client.logs(name))
    assert any(line.startswith("stage 2 tune epoch 1/1") for line in log), log
    assert [e.reason for e in client.events(name)][:2] == ["Created", "Training"]  # as the operator posts them
    assert client.events(name)[-1].reason == "Succeeded"
    assert [j.name for j in client.list()] == ["colours"]
    fetched = client.fetch(name, tmp_path / "fetched")
    assert (fetched / "model.keras").is_file() and (fetched / "manifest.json").is_file()
    client.delete(name)
    with pytest.raises(NotFound):
        client.get(name)
    assert (tmp_path / "runs" / "colours" / "manifest.json").exists()  # the model stays


def test_a_failing_local_job_raises_job_failed_with_its_reason(tiny_base, tmp_path):
    client = Client(backend="local", local_root=tmp_path / "runs")
    name = client.submit(_job("nodata", tiny_base, tmp_path / "no-such-folder"))
    with pytest.raises(JobFailed, match="dataset.imageFolder: no folder at") as failed:
        client.wait(name, timeout=300)
    assert failed.value.reason == "BadDataset"  # the reason a cluster gives the same failure
    assert client.events(name)[-1].type == "Warning"
    assert client.wait(name, phases={"Failed"}, timeout=5).status.phase.value == "Failed"


def test_waits_validate_their_arguments_and_time_out(tiny_base, colour_folder, tmp_path):
    client = Client(backend="local", local_root=tmp_path / "runs")
    with pytest.raises(ValueError, match="timeout"):
        client.wait("x", timeout=0)
    with pytest.raises(ValueError, match="phases"):
        client.wait("x", phases={"Done"})
    with pytest.raises(NotFound):
        client.wait("x", timeout=1)
    name = client.submit(_job("slow", tiny_base, colour_folder))
    with pytest.raises(Timeout, match="still"):
        client.wait(name, timeout=0.5)
    client.suspend(name)
    assert client.get(name).status.phase.value == "Suspended"
    client.resume(name)
    assert client.wait(name, timeout=600).status.phase.value == "Succeeded"


def test_an_invalid_manifest_is_refused_before_anything_runs(tmp_path):
    client = Client(backend="local", local_root=tmp_path / "runs")
    bad = job_dict("bad", base={"application": "Xceptoin"}, dataset={"imageFolder": {"uri": "/x"}})
    with pytest.raises(InvalidJob, match="did you mean 'Xception'"):
        client.submit(bad)
    assert not (tmp_path / "runs").exists()
