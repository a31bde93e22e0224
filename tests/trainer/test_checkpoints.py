"""Checkpoint writes in the background: a failed write never leaves a state.json naming a missing file."""

from __future__ import annotations

import json

import numpy as np
import pytest

from headstart.api import storage
from headstart.api.output_manifest import Owner
from headstart.trainer import checkpoints as ck
from headstart.trainer.errors import CheckpointError, OutputConflictError, OutputError


class _Model:
    def __init__(self, value: float):
        self.value = value

    def get_weights(self):
        return [np.full((4, 4), self.value, "float32"), np.full((4,), self.value, "float32")]


class _Var:
    def __init__(self, value: float):
        self.value = value

    def numpy(self):
        return np.full((3,), self.value, "float32")


class _Optimizer:
    def __init__(self, value: float):
        self.variables = [_Var(value)]


def _epoch(cp: ck.Checkpoints, state: ck.State, epoch: int) -> None:
    state.current.epochs_done = epoch
    cp.save_epoch(state, _Model(epoch), _Optimizer(epoch), None)


def test_a_failed_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    cp = ck.Checkpoints(str(tmp_path), Owner("job"), "digest")
    state = ck.State(job="job", spec_sha256="digest", current=ck.StageState(index=0))
    _epoch(cp, state, 1)
    cp.flush()
    good = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert good["weights"] == "stage-00-epoch-0001.weights.npz"

    real = storage.write_bytes_atomic

    def failing(uri: str, data: bytes) -> None:
        if uri.endswith("epoch-0002.weights.npz"):
            raise OSError(28, "No space left on device")
        real(uri, data)

    monkeypatch.setattr(storage, "write_bytes_atomic", failing)
    _epoch(cp, state, 2)
    with pytest.raises(OutputError, match="No space left on device"):
        cp.flush()
    on_disk = json.loads((tmp_path / "checkpoints" / "state.json").read_text())
    assert on_disk == good  # state.json was not advanced past the failed write...
    for name in (good["weights"], good["current"]["optimizer"]):
        assert (tmp_path / "checkpoints" / name).exists()  # ...and epoch 1's files were not removed
    monkeypatch.setattr(storage, "write_bytes_atomic", real)
    resumed = ck.Checkpoints(str(tmp_path), Owner("job"), "digest").load()
    assert resumed is not None and resumed.current.epochs_done == 1
    cp.close()


def test_snapshots_are_taken_when_the_save_is_asked_for(tmp_path):
    cp = ck.Checkpoints(str(tmp_path), Owner("job"), "digest")
    state = ck.State(job="job", spec_sha256="digest", current=ck.StageState(index=0))
    model = _Model(1.0)
    state.current.epochs_done = 1
    cp.save_epoch(state, model, _Optimizer(1.0), None)
    model.value = 99.0  # training goes on while the checkpoint is written
    cp.close()
    with np.load(tmp_path / "checkpoints" / "stage-00-epoch-0001.weights.npz") as npz:
        assert float(npz["arr_0"][0, 0]) == 1.0
    assert json.loads((tmp_path / "checkpoints" / "state.json").read_text())["current"]["epochs_done"] == 1


@pytest.mark.parametrize("damage", [b'{"format": 2, "job": "job", "spec_sha', b'{"format": 99, "job": "job"}',
                                    b"\x00\x01"])
def test_a_state_that_cannot_be_read_stops_the_run_and_deletes_nothing(tmp_path, damage):
    cp = ck.Checkpoints(str(tmp_path), Owner("job"), "digest")
    state = ck.State(job="job", spec_sha256="digest", current=ck.StageState(index=0))
    _epoch(cp, state, 1)
    cp.close()
    folder = tmp_path / "checkpoints"
    (folder / "state.json").write_bytes(damage)  # truncated, another format, not JSON
    before = sorted(p.name for p in folder.iterdir())
    with pytest.raises(CheckpointError, match=r"state\.json cannot be read .* nothing was deleted"):
        ck.Checkpoints(str(tmp_path), Owner("job"), "digest").load()
    assert sorted(p.name for p in folder.iterdir()) == before  # the weights it named are all still there
    assert CheckpointError("x").exit_code == 14  # permanent: a retry cannot mend it


def test_files_are_fsynced_before_they_are_renamed_into_place(tmp_path, monkeypatch):
    import os

    synced: list[int] = []
    real = os.fsync
    monkeypatch.setattr(os, "fsync", lambda fd: (synced.append(fd), real(fd))[1])
    storage.write_bytes_atomic(str(tmp_path / "state.json"), b"{}")
    assert len(synced) == 2  # the file, then the folder that names it
    assert (tmp_path / "state.json").read_bytes() == b"{}"


def test_another_jobs_checkpoints_are_neither_resumed_nor_deleted(tmp_path):
    """Checkpoints belong to a job's namespace, name and uid: the same name recreated (a new uid), or in
    another namespace, fails naming the owner and leaves every file; with overwrite it starts afresh, saying so."""
    owner = Owner("flowers", "team-a", "uid-1")
    cp = ck.Checkpoints(str(tmp_path), owner, "digest")
    state = ck.State(job="flowers", spec_sha256="digest", owner=owner.to_dict(), current=ck.StageState(index=0))
    _epoch(cp, state, 1)
    cp.close()
    folder = tmp_path / "checkpoints"
    before = sorted(p.name for p in folder.iterdir())
    assert json.loads((folder / "state.json").read_text())["owner"] == {
        "namespace": "team-a", "name": "flowers", "uid": "uid-1"}
    for other in (Owner("flowers", "team-a", "uid-2"), Owner("flowers", "team-b", "uid-3"), Owner("roses")):
        with pytest.raises(OutputConflictError, match=r"checkpoints of team-a/flowers \(uid uid-1\).*overwrite"):
            ck.Checkpoints(str(tmp_path), other, "digest").load()
    assert sorted(p.name for p in folder.iterdir()) == before
    said: list[str] = []
    assert ck.Checkpoints(str(tmp_path), Owner("flowers", "team-a", "uid-2"), "digest").load(True, said.append) is None
    assert said and "team-a/flowers (uid uid-1)" in said[0]
    resumed = ck.Checkpoints(str(tmp_path), owner, "digest").load()  # its own: resumed
    assert resumed is not None and resumed.current.epochs_done == 1
    assert ck.Checkpoints(str(tmp_path), owner, "another spec").load() is None  # its own, another spec: afresh
