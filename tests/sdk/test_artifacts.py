"""Fetching a model: every artifact checked against the manifest, nothing complete-looking left behind on
failure, unsafe archives refused; storage through the trainer's own fsspec code (a local S3 server too)."""

from __future__ import annotations

import io
import json
import tarfile
from pathlib import Path

import pytest

from headstart.api.output_manifest import Owner
from headstart.sdk.artifacts import fetch_uri, unpack_tar
from headstart.sdk.errors import ArtifactError, NotFound
from headstart.trainer import outputs


def publish(uri: str, tmp_path: Path) -> str:
    """A model's outputs as the trainer publishes them (artifacts renamed into place, manifest last)."""
    staging = tmp_path / "staging"
    (staging / "savedmodel" / "variables").mkdir(parents=True, exist_ok=True)
    (staging / "model.keras").write_bytes(b"weights" * 1000)
    (staging / "labels.txt").write_text("cat\ndog\n")
    (staging / "savedmodel" / "saved_model.pb").write_bytes(b"graph")
    (staging / "savedmodel" / "variables" / "variables.index").write_bytes(b"index")
    info = outputs.publish(uri, {"model.keras": str(staging / "model.keras"), "labels.txt": str(staging / "labels.txt"),
                                 "savedmodel": str(staging / "savedmodel")},
                           owner=Owner("pets"), spec_sha256="0" * 64, formats=["keras", "savedmodel"],
                           class_names=["cat", "dog"])
    return info.sha256


def test_fetch_copies_every_artifact_and_verifies_it(tmp_path):
    out = tmp_path / "out"
    sha = publish(str(out), tmp_path)
    (out / "checkpoints").mkdir()
    (out / "checkpoints" / "state.json").write_text("{}")  # not an artifact: not fetched
    dest = fetch_uri(str(out), tmp_path / "here" / "pets", manifest_sha256=sha)
    assert sorted(p.relative_to(dest).as_posix() for p in dest.rglob("*") if p.is_file()) == [
        "labels.txt", "manifest.json", "model.keras", "savedmodel/saved_model.pb",
        "savedmodel/variables/variables.index"]
    assert (dest / "model.keras").read_bytes() == (out / "model.keras").read_bytes()
    assert [p.name for p in dest.parent.iterdir()] == ["pets"]  # no staging folder left


def test_a_changed_artifact_is_refused_and_nothing_is_left(tmp_path):
    out = tmp_path / "out"
    sha = publish(str(out), tmp_path)
    (out / "labels.txt").write_text("cat\nwolf\n")
    with pytest.raises(ArtifactError, match="labels.txt"):
        fetch_uri(str(out), tmp_path / "dest" / "pets", manifest_sha256=sha)
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_manifest_other_than_the_jobs_is_refused(tmp_path):
    out = tmp_path / "out"
    publish(str(out), tmp_path)
    with pytest.raises(ArtifactError, match="not the one the job reported"):
        fetch_uri(str(out), tmp_path / "dest", manifest_sha256="f" * 64)
    assert not (tmp_path / "dest").exists() or not any((tmp_path / "dest").iterdir())


def test_an_incomplete_output_is_not_found(tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "model.keras").write_bytes(b"half")
    with pytest.raises(NotFound, match="manifest.json is missing"):
        fetch_uri(str(tmp_path / "out"), tmp_path / "dest")


def test_a_download_that_breaks_midway_leaves_no_model(tmp_path, monkeypatch):
    out = tmp_path / "out"
    sha = publish(str(out), tmp_path)
    from headstart.api import storage

    real = storage.download

    def breaking(uri: str, local: str) -> str:
        if uri.endswith("saved_model.pb"):
            raise OSError(104, "Connection reset by peer")
        return real(uri, local)

    monkeypatch.setattr(storage, "download", breaking)
    with pytest.raises(ArtifactError, match="Connection reset"):
        fetch_uri(str(out), tmp_path / "dest" / "pets", manifest_sha256=sha)
    assert list((tmp_path / "dest").iterdir()) == []


def test_a_non_empty_destination_is_kept_unless_overwritten(tmp_path):
    out = tmp_path / "out"
    sha = publish(str(out), tmp_path)
    dest = tmp_path / "dest"
    dest.mkdir()
    (dest / "mine.txt").write_text("keep me")
    with pytest.raises(ArtifactError, match="not empty"):
        fetch_uri(str(out), dest, manifest_sha256=sha)
    assert (dest / "mine.txt").read_text() == "keep me"
    fetch_uri(str(out), dest, manifest_sha256=sha, overwrite=True)
    assert not (dest / "mine.txt").exists() and (dest / "manifest.json").exists()


def _tar(members: list[tuple[tarfile.TarInfo, bytes | None]]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as archive:
        for info, data in members:
            archive.addfile(info, io.BytesIO(data) if data is not None else None)
    buf.seek(0)
    return buf


def _file(name: str, data: bytes) -> tuple[tarfile.TarInfo, bytes]:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    return info, data


def _model_members(tmp_path: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    out = tmp_path / "model-src"
    publish(str(out), tmp_path)
    return [_file(p.relative_to(out).as_posix(), p.read_bytes()) for p in sorted(out.rglob("*")) if p.is_file()]


def test_a_good_archive_unpacks_and_verifies(tmp_path):
    dest = unpack_tar(_tar(_model_members(tmp_path)), tmp_path / "dest")
    assert json.loads((dest / "manifest.json").read_text())["job"] == "pets"


@pytest.mark.parametrize("evil", ["../escape.txt", "/etc/evil", "savedmodel/../../escape", "link", "hardlink"])
def test_unsafe_archive_members_are_refused_and_nothing_is_written(tmp_path, evil):
    members = _model_members(tmp_path)
    if evil == "link":
        info = tarfile.TarInfo("labels-link.txt")
        info.type, info.linkname = tarfile.SYMTYPE, "/etc/passwd"
        members.insert(0, (info, None))
    elif evil == "hardlink":
        info = tarfile.TarInfo("labels-hard.txt")
        info.type, info.linkname = tarfile.LNKTYPE, "labels.txt"
        members.append((info, None))
    else:
        members.insert(0, _file(evil, b"pwned"))
    with pytest.raises(ArtifactError, match="refusing"):
        unpack_tar(_tar(members), tmp_path / "dest" / "pets")
    assert list((tmp_path / "dest").iterdir()) == []
    assert not (tmp_path / "escape.txt").exists() and not (tmp_path / "escape").exists()


def test_s3_output_written_by_the_trainers_code_is_fetched(s3_server, tmp_path):
    import fsspec

    fs = fsspec.filesystem("s3")
    fs.mkdir("models")
    sha = publish("s3://models/pets/v1", tmp_path)
    assert fs.exists("models/pets/v1/manifest.json")
    dest = fetch_uri("s3://models/pets/v1", tmp_path / "pets", manifest_sha256=sha)
    assert (dest / "savedmodel" / "variables" / "variables.index").read_bytes() == b"index"
    assert outputs.verify("s3://models/pets/v1") == []
