"""The trainer's typed errors: each carries a one-line reason the CLI prints as it is (no traceback)."""

from __future__ import annotations


class TrainerError(Exception):
    """A job that cannot be trained as specified. ``str(error)`` is one line for a user."""

    exit_code = 1

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class SpecError(TrainerError):
    """The spec is valid as a document but cannot be trained (e.g. momentum for Adam)."""

    exit_code = 2


class BaseModelError(TrainerError):
    """The base model cannot be built: unknown layer for cutAt, unreadable model file, bad weights."""


class DatasetError(TrainerError):
    """The dataset cannot be read: not found, a single class, an empty class folder, a bad split."""


class NetworkError(TrainerError):
    """Something had to be downloaded and the network could not be reached."""


class WeightsDownloadError(BaseModelError, NetworkError):
    """ImageNet weights are not cached locally and cannot be downloaded."""


class DatasetDownloadError(DatasetError, NetworkError):
    """A TFDS dataset is not prepared locally and cannot be downloaded."""


class OutputError(TrainerError):
    """The output location cannot be used: another job's model is there, or a write failed."""


def looks_like_network_failure(exc: BaseException) -> bool:
    """Whether an exception (or one it was raised from) says the network could not be reached."""
    import socket
    import urllib.error

    words = ("url fetch failure", "name or service not known", "temporary failure in name resolution",
             "network is unreachable", "connection refused", "failed to establish a new connection",
             "max retries exceeded", "nodename nor servname", "timed out", "no route to host",
             "connection reset", "cannot connect")
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, (urllib.error.URLError, socket.gaierror, socket.timeout, ConnectionError)):
            return True
        text = str(current).lower()
        if any(w in text for w in words):
            return True
        if type(current).__module__.startswith(("requests", "urllib3")) and "connection" in \
                type(current).__name__.lower():
            return True
        current = current.__cause__ or current.__context__
    return False


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message (its type's name when it has none), for one-line errors."""
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
