"""Fetching a job's model to this machine: every artifact its manifest lists, each checked against its
sha256, in a hidden folder beside the destination that is renamed into place only when all is verified,
so a partial download never leaves a complete-looking model behind.

Storage URIs (file://, s3://, gs://, local paths) go through the fsspec code the trainer writes them with
(headstart.api.storage, no TensorFlow); a pvc:// output arrives as a tar stream from a helper pod
(see pvc_fetch), unpacked here with every member checked: no absolute paths, no '..', no links.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tarfile
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import IO

from headstart.api import storage
from headstart.api.output_manifest import MANIFEST, damaged

from .errors import ArtifactError, NotFound


def staging_dir(dest: Path) -> Path:
    """A fresh hidden folder beside ``dest`` (same file system, so the final rename is atomic)."""
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = dest.parent / f".{dest.name}.partial-{uuid.uuid4().hex[:8]}"
    staging.mkdir()
    return staging


def fetch_uri(uri: str, dest: Path, *, manifest_sha256: str | None = None, overwrite: bool = False) -> Path:
    """Download the model at storage ``uri`` into ``dest`` and verify it; returns ``dest``."""
    check_destination(dest, overwrite)
    manifest_uri = storage.join(uri, MANIFEST)
    try:
        if not storage.exists(manifest_uri):
            raise NotFound(f"no complete model at {uri}: {MANIFEST} is missing")
        raw = storage.read_bytes(manifest_uri)
    except (OSError, ImportError, ValueError) as exc:
        raise ArtifactError(f"cannot read {manifest_uri}: {exc}") from exc
    staging = staging_dir(dest)
    try:
        manifest = parse_manifest(raw, manifest_sha256, uri)
        for rel in manifest["artifacts"]:
            target = inside(staging, rel)
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                storage.download(storage.join(uri, rel), str(target))
            except (OSError, ValueError) as exc:
                raise ArtifactError(f"cannot download {rel} from {uri}: {exc}") from exc
        (staging / MANIFEST).write_bytes(raw)
        return finish(staging, dest, overwrite)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def unpack_tar(stream: IO[bytes], dest: Path, *, manifest_sha256: str | None = None, source: str = "tar",
               overwrite: bool = False) -> Path:
    """Unpack a tar stream of a model's folder into ``dest``, refusing unsafe members, and verify it."""
    check_destination(dest, overwrite)
    staging = staging_dir(dest)
    try:
        with tarfile.open(fileobj=stream, mode="r|*") as archive:
            for member in archive:
                target = safe_member(member, staging)
                if member.isdir():
                    target.mkdir(parents=True, exist_ok=True)
                    continue
                target.parent.mkdir(parents=True, exist_ok=True)
                source_file = archive.extractfile(member)
                if source_file is None:
                    raise ArtifactError(f"{source}: cannot read member {member.name!r}")
                with open(target, "wb") as out:
                    shutil.copyfileobj(source_file, out)
        manifest_path = staging / MANIFEST
        if not manifest_path.is_file():
            raise NotFound(f"no complete model in {source}: {MANIFEST} is missing")
        parse_manifest(manifest_path.read_bytes(), manifest_sha256, source)
        return finish(staging, dest, overwrite)
    except tarfile.TarError as exc:
        raise ArtifactError(f"{source}: not a readable tar stream: {exc}") from exc
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def safe_member(member: tarfile.TarInfo, root: Path) -> Path:
    """Where a tar member goes under ``root``; ArtifactError for links, devices and paths that leave it."""
    name = member.name
    if not (member.isfile() or member.isdir()):
        kind = "link" if member.issym() or member.islnk() else "special file"
        raise ArtifactError(f"refusing {kind} {name!r} in the model's archive")
    if name.startswith("/") or os.path.isabs(name):
        raise ArtifactError(f"refusing absolute path {name!r} in the model's archive")
    return inside(root, name)


def inside(root: Path, relative: str) -> Path:
    """``root / relative``, refusing anything that would land outside ``root``."""
    parts = Path(relative).parts
    if relative.startswith("/") or ".." in parts:
        raise ArtifactError(f"refusing path {relative!r}: it leaves the model's folder")
    target = (root / relative).resolve()
    if target != root.resolve() and root.resolve() not in target.parents:
        raise ArtifactError(f"refusing path {relative!r}: it leaves the model's folder")
    return target


def parse_manifest(raw: bytes, manifest_sha256: str | None, source: str) -> dict:
    """The model's manifest, read from its raw bytes and checked.

    Args:
        raw: The manifest file's bytes.
        manifest_sha256: The sha256 the job reported for the manifest (None: not checked).
        source: Where the manifest came from, for the error messages.

    Returns:
        The parsed manifest (its ``artifacts`` a mapping).

    Raises:
        ArtifactError: Its sha256 is not ``manifest_sha256``, or it is not JSON with an ``artifacts`` mapping.
    """
    if manifest_sha256 is not None and hashlib.sha256(raw).hexdigest() != manifest_sha256:
        raise ArtifactError(f"{source}: {MANIFEST} is not the one the job reported (sha256 differs); "
                            "the output was overwritten or changed")
    try:
        manifest = json.loads(raw)
        artifacts = manifest["artifacts"]
        if not isinstance(artifacts, dict):
            raise TypeError("artifacts is not a mapping")
    except (ValueError, KeyError, TypeError) as exc:
        raise ArtifactError(f"{source}: {MANIFEST} is unreadable: {exc}") from exc
    return manifest


def verify(folder: Path) -> list[str]:
    """The artifacts under ``folder`` missing or different from its manifest (empty: intact)."""
    manifest = json.loads((folder / MANIFEST).read_bytes())

    def digest_of(rel: str) -> str | None:
        path = inside(folder, rel)
        return storage.sha256_file(str(path)) if path.is_file() else None

    return damaged(manifest["artifacts"], digest_of)


def check_destination(dest: Path, overwrite: bool) -> None:
    """Refuse a destination the model cannot be fetched into.

    Args:
        dest: The folder the model is to go to.
        overwrite: Whether a folder that is not empty may be replaced.

    Raises:
        ArtifactError: ``dest`` exists and is not a folder, or is a folder that is not empty and ``overwrite``
            is false.
    """
    if dest.exists() and not dest.is_dir():
        raise ArtifactError(f"{dest} exists and is not a folder")
    if dest.is_dir() and any(dest.iterdir()) and not overwrite:
        raise ArtifactError(f"{dest} is not empty; choose another folder or overwrite it")


def finish(staging: Path, dest: Path, overwrite: bool,
           replace: Callable[[Path, Path], None] = os.replace) -> Path:
    """Verify the staged model, then move it into place (the old folder goes only once all is verified)."""
    bad = verify(staging)
    if bad:
        raise ArtifactError(f"{len(bad)} artifact(s) do not match the manifest's sha256: {', '.join(bad[:5])}")
    if dest.exists():
        if not overwrite and any(dest.iterdir()):
            raise ArtifactError(f"{dest} is not empty")
        old = dest.parent / f".{dest.name}.old-{uuid.uuid4().hex[:8]}"
        replace(dest, old)
        replace(staging, dest)
        shutil.rmtree(old, ignore_errors=True)
    else:
        replace(staging, dest)
    return dest
