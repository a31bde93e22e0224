"""The trainer's typed errors: each carries a one-line reason the CLI prints as it is (no traceback), and
an ``exit_code`` from the contract in :mod:`headstart.api.exitcodes` (permanent codes fail the training Job
at once; any other non-zero code is retried within backoffLimit and resumes from the last checkpoint).
"""

from __future__ import annotations

from headstart.api.exitcodes import PERMANENT_EXIT_CODES, ExitCode, is_permanent
from headstart.api.uris import redact_text

__all__ = ["PERMANENT_EXIT_CODES", "BaseModelError", "CheckpointError", "DatasetDownloadError", "DatasetError",
           "NetworkError", "OutputConflictError", "OutputUnwritableError", "OutputError", "SpecError",
           "TerminatedError", "TrainerError", "WeightsDownloadError", "first_line", "is_permanent",
           "looks_like_network_failure"]


class TrainerError(Exception):
    """A job that cannot be trained as specified. ``str(error)`` is one line for a user, with the credentials
    of any URI in it redacted (it goes to logs, the termination message and the job's status)."""

    exit_code = ExitCode.UNEXPECTED

    def __init__(self, message: str):
        super().__init__(redact_text(" ".join(str(message).split())))


class SpecError(TrainerError):
    """The spec is valid as a document but cannot be trained (e.g. momentum for Adam)."""

    exit_code = ExitCode.SPEC


class BaseModelError(TrainerError):
    """The base model cannot be built: unknown layer for cutAt, unreadable model file, bad weights."""

    exit_code = ExitCode.BASE_MODEL


class DatasetError(TrainerError):
    """The dataset cannot be read: not found, a single class, an empty class folder, a bad split."""

    exit_code = ExitCode.DATASET


class NetworkError(TrainerError):
    """Something had to be downloaded and the network could not be reached (transient: retried)."""

    exit_code = ExitCode.TEMPORARY


class WeightsDownloadError(BaseModelError, NetworkError):
    """ImageNet weights are not cached locally and cannot be downloaded."""

    exit_code = ExitCode.TEMPORARY


class DatasetDownloadError(DatasetError, NetworkError):
    """A TFDS dataset is not prepared locally and cannot be downloaded."""

    exit_code = ExitCode.TEMPORARY


class OutputError(TrainerError):
    """The output location cannot be read or written now (a storage hiccup: transient, retried)."""

    exit_code = ExitCode.TEMPORARY


class OutputUnwritableError(OutputError):
    """The output location cannot be written at all (permission, read-only, a file in the way, no bucket):
    retrying cannot help (permanent), unlike a storage hiccup."""

    exit_code = ExitCode.OUTPUT_UNWRITABLE


class CheckpointError(TrainerError):
    """A checkpoint state that cannot be read: the run stops without deleting anything (permanent)."""

    exit_code = ExitCode.CHECKPOINT


class OutputConflictError(OutputError):
    """The output location holds another job's complete model (and overwrite is off): permanent."""

    exit_code = ExitCode.OUTPUT_CONFLICT


class TerminatedError(TrainerError):
    """SIGTERM (the pod was stopped, evicted or preempted): the run stopped after a step and checkpointed
    where it was (transient: the next run resumes there)."""

    exit_code = ExitCode.TERMINATED


def looks_like_network_failure(exc: BaseException) -> bool:
    """Whether an exception (or one it was raised from) says the network could not be reached."""
    import socket
    import urllib.error

    words = ("url fetch failure", "name or service not known", "temporary failure in name resolution",
             "network is unreachable", "connection refused", "failed to establish a new connection",
             "max retries exceeded", "nodename nor servname", "timed out", "no route to host",
             "connection reset", "cannot connect", "could not connect")
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
