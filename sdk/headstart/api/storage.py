"""Storage through fsspec: every URI of a spec (local path, file://, s3://, gs://, memory://, pvc://).

Writes that must look all-or-nothing go, on a file system (a local path, a pvc:// mount), to a temporary
name first and are then renamed. An object store has no rename (fsspec's ``mv`` copies, and s3fs's
recursive ``mv`` of a prefix fails); there each object's upload is all-or-nothing by itself, and a folder's
objects go straight to their keys: completeness is what the manifest, written last, says.

Shared by the trainer (which writes outputs and reads data) and the SDK (which fetches outputs); fsspec is
imported only when a URI is opened.
"""

from __future__ import annotations

import hashlib
import os
import uuid
from typing import Any
from urllib.parse import unquote, urlsplit, urlunsplit

from headstart.api.uris import redact, redact_text, to_fsspec_url


class StorageError(OSError):
    """A URI that no file system opens: an unknown scheme, or the package of its scheme not installed."""


def url(uri: str) -> str:
    """The fsspec URL of a spec URI (see headstart.api.uris.to_fsspec_url).

    Args:
        uri: A spec URI.

    Returns:
        The URL.
    """
    return to_fsspec_url(uri)


def _credentials(fs_url: str) -> tuple[str, dict[str, str]]:
    """An s3:// URL's ``key:secret@`` taken out of it, as s3fs's key and secret (left in, s3fs would take them
    for part of the bucket's name, and say so, secret included, in its error)."""
    parts = urlsplit(fs_url)
    if parts.scheme not in ("s3", "s3a") or "@" not in parts.netloc:
        return fs_url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    key, _, secret = userinfo.partition(":")
    return urlunsplit(parts._replace(netloc=host)), {"key": unquote(key), "secret": unquote(secret)}


def fs_path(uri: str) -> tuple[Any, str]:
    """(fsspec filesystem, path in it) for a spec URI."""
    import fsspec

    fs_url, credentials = _credentials(url(uri))
    try:
        return fsspec.core.url_to_fs(fs_url, **credentials)
    except (ImportError, ValueError) as exc:
        raise StorageError(f"cannot open {redact(uri)}: {redact_text(str(exc))}") from exc


def join(uri: str, *parts: str) -> str:
    """A URI with path parts appended, one ``/`` between each (empty parts skipped).

    Args:
        uri: The base URI (a trailing ``/`` is dropped).
        *parts: The parts to append (their leading and trailing ``/`` dropped).

    Returns:
        The joined URI.
    """
    return "/".join([uri.rstrip("/"), *[p.strip("/") for p in parts if p]])


def is_local(uri: str) -> bool:
    """Whether the URI opens on a local file system (a path, file://, a pvc:// mount).

    Args:
        uri: A spec URI.

    Returns:
        True when its fsspec file system's protocol is ``file``.

    Raises:
        StorageError: No file system opens the URI.
    """
    fs, _ = fs_path(uri)
    return "file" in (fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,))


def exists(uri: str) -> bool:
    """Whether a file or folder exists at the URI.

    Args:
        uri: A spec URI.

    Returns:
        True when it exists.

    Raises:
        StorageError: No file system opens the URI.
    """
    fs, path = fs_path(uri)
    return fs.exists(path)


def read_bytes(uri: str) -> bytes:
    """The contents of the file at the URI.

    Args:
        uri: A spec URI.

    Returns:
        The bytes.

    Raises:
        StorageError: No file system opens the URI.
        OSError: The file cannot be read (FileNotFoundError when it is missing).
    """
    fs, path = fs_path(uri)
    return fs.cat_file(path)


def read_text(uri: str) -> str:
    """The contents of the file at the URI, as UTF-8 text.

    Args:
        uri: A spec URI.

    Returns:
        The text.

    Raises:
        StorageError: No file system opens the URI.
        OSError: The file cannot be read.
        UnicodeDecodeError: It is not UTF-8.
    """
    return read_bytes(uri).decode("utf-8")


def remove(uri: str) -> None:
    """Remove a file or a folder (recursively) if it exists."""
    fs, path = fs_path(uri)
    if fs.exists(path):
        fs.rm(path, recursive=fs.isdir(path))


def _tmp_name(path: str) -> str:
    head, _, tail = path.rstrip("/").rpartition("/")
    return f"{head}/.{tail}.tmp-{uuid.uuid4().hex[:12]}"


def _staged(uri: str) -> tuple[Any, str, str]:
    """(filesystem, final path, temporary path beside it), the parent folder created."""
    fs, path = fs_path(uri)
    parent = path.rstrip("/").rpartition("/")[0]
    if parent:
        fs.makedirs(parent, exist_ok=True)
    return fs, path, _tmp_name(path)


def write_bytes_atomic(uri: str, data: bytes) -> None:
    """Write a file under a temporary name, then rename it into place (an object store: one upload)."""
    fs, path, tmp = _staged(uri)
    if not _is_local_fs(fs):
        fs.pipe_file(path, data)
        return
    with open(tmp, "wb") as f:  # a local (or mounted) file system: fsynced before it is renamed into place
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    _replace(fs, tmp, path)
    _fsync_dir(path.rpartition("/")[0] or ".")


def put_atomic(local: str, uri: str) -> None:
    """Upload a local file or folder to ``uri`` under a temporary name, then rename it into place (an object
    store: what was at ``uri`` is removed, then each object is uploaded to its key)."""
    fs, path, tmp = _staged(uri)
    target = tmp if _is_local_fs(fs) else path
    if not _is_local_fs(fs) and fs.exists(path):
        fs.rm(path, recursive=fs.isdir(path))
    if os.path.isdir(local):
        fs.put(local.rstrip("/") + "/", target, recursive=True)
    else:
        fs.put_file(local, target)
    if target == tmp:
        _replace(fs, tmp, path)


def put_tree(local_dir: str, uri: str) -> None:
    """Upload a folder's files into ``uri``, adding to what is there (TensorBoard logs)."""
    fs, path = fs_path(uri)
    for root, _, files in os.walk(local_dir):
        for name in files:
            src = os.path.join(root, name)
            rel = os.path.relpath(src, local_dir).replace(os.sep, "/")
            dst = f"{path.rstrip('/')}/{rel}"
            fs.makedirs(dst.rpartition("/")[0], exist_ok=True)
            fs.put_file(src, dst)


def _replace(fs: Any, tmp: str, path: str) -> None:
    """Rename ``tmp`` onto ``path`` on a local file system (a folder there is removed first)."""
    if fs.exists(path) and fs.isdir(path):
        fs.rm(path, recursive=True)
    os.replace(tmp, path)


def _fsync_dir(path: str) -> None:
    """Make a rename in ``path`` durable (a directory's entry is data too)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_local_fs(fs: Any) -> bool:
    protocol = fs.protocol if isinstance(fs.protocol, tuple) else (fs.protocol,)
    return "file" in protocol


def download(uri: str, local: str) -> str:
    """Copy a file or folder to a local path; returns the local path."""
    fs, path = fs_path(uri)
    if fs.isdir(path):
        fs.get(path.rstrip("/") + "/", local, recursive=True)
    else:
        fs.get_file(path, local)
    return local


def list_files(uri: str) -> list[str]:
    """Paths (relative to ``uri``) of every file under a folder, sorted."""
    fs, path = fs_path(uri)
    if not fs.exists(path):
        return []
    base = path.rstrip("/")
    return sorted(p[len(base) + 1:] if p.startswith(base + "/") else p for p in fs.find(base))


def sha256_file(local: str) -> str:
    """The sha256 of a local file, read in chunks of 1 MiB.

    Args:
        local: The file's local path.

    Returns:
        The hex digest.
    """
    h = hashlib.sha256()
    with open(local, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
