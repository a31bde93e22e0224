"""The outputs of a job, written so that only a complete set ever looks complete.

Every artifact is staged locally, uploaded under a temporary name and renamed into place. manifest.json
is written last and holds the sha256 of every artifact: its presence means the output is complete.
Before anything else is written, an older manifest.json is removed.
"""

from __future__ import annotations

import datetime as dt
import errno
import hashlib
import json
import os
import uuid
from dataclasses import dataclass
from typing import Any

from headstart.api import storage
from headstart.api.output_manifest import MANIFEST, MODEL_KIND, Owner, damaged

from .errors import OutputConflictError, OutputError, OutputUnwritableError
from .reporting import ModelInfo


@dataclass
class Existing:
    manifest: dict
    sha256: str


def existing(output_uri: str) -> Existing | None:
    """The complete model already at the output location, if any."""
    uri = storage.join(output_uri, MANIFEST)
    try:
        if not storage.exists(uri):
            return None
        raw = storage.read_bytes(uri)
    except OSError as exc:
        raise OutputError(f"cannot read the output location {output_uri}: {exc}") from exc
    try:
        manifest = json.loads(raw)
    except ValueError:
        manifest = {}
    return Existing(manifest, hashlib.sha256(raw).hexdigest())


#: Errors that say a location cannot be written at all (not "not now"): EACCES, EROFS, ENOTDIR, ENOENT...
UNWRITABLE = (PermissionError, NotADirectoryError, FileNotFoundError, IsADirectoryError, FileExistsError)


def probe_writable(output_uri: str) -> None:
    """Write, then remove, a small file at the output location, before any data is read: a location that
    cannot be written fails at once (OutputUnwritableError, permanent), a storage hiccup is an OutputError
    (transient: retried)."""
    probe = storage.join(output_uri, f".headstart-probe-{os.getpid()}-{uuid.uuid4().hex[:8]}")
    try:
        storage.write_bytes_atomic(probe, b"headstart: may this job write here?\n")
        storage.remove(probe)
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        if isinstance(exc, UNWRITABLE) or exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
            raise OutputUnwritableError(f"output.uri: {output_uri} cannot be written ({reason})") from exc
        raise OutputError(f"output.uri: {output_uri} cannot be written now ({reason}); retrying") from exc


def owned_by(found: Existing, owner: Owner) -> bool:
    """Whether the complete model ``found`` is ``owner``'s own."""
    recorded = Owner.recorded(found.manifest)
    return recorded is not None and owner.same_job(recorded)


def check_location(output_uri: str, owner: Owner, overwrite: bool) -> Existing | None:
    """Refuse a location holding another job's complete model (another name, namespace or uid) unless
    overwriting is allowed."""
    found = existing(output_uri)
    if found is not None and not owned_by(found, owner) and not overwrite:
        other = Owner.recorded(found.manifest) or "an unknown job"
        raise OutputConflictError(f"{output_uri} already holds the complete model of {other}; choose another output "
                                  "or set spec.output.overwrite: true")
    return found


def invalidate(output_uri: str) -> None:
    """Make the location not look complete (before writing anything into it)."""
    storage.remove(storage.join(output_uri, MANIFEST))


def stage_model(model: Any, formats: list[str], staging: str, class_names: list[str],
                image_size: tuple[int, int]) -> dict[str, str]:
    """Write the model in each format under ``staging``; returns artifact name -> local path. The SavedModel
    serves raw pixels (its default signature) and encoded images (serving.py)."""
    import keras
    import tensorflow as tf

    from . import serving

    # The same layers without the training state: no optimizer variables in the file, nothing to skip
    # (or warn about) when it is loaded; compile it again to train it further.
    model = keras.Model(model.input, model.output, name=model.name)
    out: dict[str, str] = {}
    os.makedirs(staging, exist_ok=True)
    if "keras" in formats:
        path = os.path.join(staging, "model.keras")
        model.save(path)
        out["model.keras"] = path
    if "savedmodel" in formats or "tflite" in formats:
        path = os.path.join(staging, "savedmodel")
        serving.export(model, path, class_names, image_size)
        if "savedmodel" in formats:
            out["savedmodel"] = path
        if "tflite" in formats:
            try:
                # The pixel signature only: TFLite has no image decoding.
                converter = tf.lite.TFLiteConverter.from_saved_model(path, signature_keys=["serving_default"])
                blob = converter.convert()
            except Exception as exc:
                raise OutputError(f"cannot convert the model to TFLite: {str(exc).splitlines()[0]}") from exc
            tfl = os.path.join(staging, "model.tflite")
            with open(tfl, "wb") as f:
                f.write(blob)
            out["model.tflite"] = tfl
    return out


def write_text(staging: str, name: str, text: str) -> str:
    path = os.path.join(staging, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def publish(output_uri: str, artifacts: dict[str, str], *, owner: Owner, spec_sha256: str,
            formats: list[str], class_names: list[str], extra_uris: list[str] = (),
            pictures: list[str] = ()) -> ModelInfo:
    """Upload staged artifacts (temporary name, then rename) and write manifest.json last.

    ``extra_uris`` are files already at the output (TensorBoard logs) whose digests the manifest lists;
    ``pictures`` the model card's pictures among the artifacts (listed by name in the manifest too).
    """
    digests: dict[str, str] = {}
    try:
        for name, local in artifacts.items():
            digests.update(_digests(name, local))
            storage.put_atomic(local, storage.join(output_uri, name))
        for rel in extra_uris:
            digests[rel] = hashlib.sha256(storage.read_bytes(storage.join(output_uri, rel))).hexdigest()
        manifest = {
            "kind": MODEL_KIND,
            "job": owner.name,
            "owner": owner.to_dict(),
            "spec_sha256": spec_sha256,
            "created": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
            "formats": formats,
            "class_names": class_names,
            "pictures": sorted(pictures),
            "artifacts": dict(sorted(digests.items())),
        }
        raw = json.dumps(manifest, indent=1).encode()
        storage.write_bytes_atomic(storage.join(output_uri, MANIFEST), raw)
    except OSError as exc:
        raise OutputError(f"cannot write the outputs to {output_uri}: {exc}") from exc
    return ModelInfo(uri=output_uri, sha256=hashlib.sha256(raw).hexdigest(), formats=list(formats),
                     class_names=list(class_names), pictures=sorted(pictures))


def _digests(name: str, local: str) -> dict[str, str]:
    if not os.path.isdir(local):
        return {name: storage.sha256_file(local)}
    out = {}
    for root, _, files in os.walk(local):
        for f in files:
            path = os.path.join(root, f)
            rel = os.path.relpath(path, local).replace(os.sep, "/")
            out[f"{name}/{rel}"] = storage.sha256_file(path)
    return out


def verify(output_uri: str) -> list[str]:
    """Artifacts whose sha256 differs from the manifest's (empty: the output is intact)."""
    found = existing(output_uri)
    if found is None:
        return [MANIFEST]
    def digest_of(rel: str) -> str | None:
        uri = storage.join(output_uri, rel)
        return hashlib.sha256(storage.read_bytes(uri)).hexdigest() if storage.exists(uri) else None

    return damaged(found.manifest.get("artifacts", {}), digest_of)
