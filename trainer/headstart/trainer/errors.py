"""The trainer's typed errors: each carries a one-line reason the CLI prints as it is (no traceback).

The exit-code contract (trainer/README.md, "Exit codes"): every error class has an ``exit_code``. A
*permanent* code means retrying cannot help (a bad spec, missing or bad data, a bad base model, an output
owned by another job); the training Job's podFailurePolicy fails the job at once on these. Any other
non-zero code is *transient* (an unexpected error, a storage or network hiccup, OOM, an interruption):
the Job retries the pod within backoffLimit and the trainer resumes from its last checkpoint.
"""

from __future__ import annotations

#: Exit codes. 0 is success.
EXIT_UNEXPECTED = 1
EXIT_SPEC = 2
EXIT_NO_TENSORFLOW = 3
EXIT_BASE_MODEL = 10
EXIT_DATASET = 11
EXIT_OUTPUT_CONFLICT = 12
EXIT_TEMPORARY = 75  # EX_TEMPFAIL: storage or network unreachable for now
EXIT_INTERRUPTED = 130  # SIGINT; a pod's SIGTERM is 143 and an OOM kill 137 (128 + signal)

#: Retrying cannot help: the Job's podFailurePolicy fails at once on these (bad spec, no TensorFlow in the
#: image, bad base model, missing or bad data, an output owned by another job).
PERMANENT_EXIT_CODES = (EXIT_SPEC, EXIT_NO_TENSORFLOW, EXIT_BASE_MODEL, EXIT_DATASET, EXIT_OUTPUT_CONFLICT)


def is_permanent(code: int) -> bool:
    """Whether a trainer exit code says retrying cannot help."""
    return code in PERMANENT_EXIT_CODES


class TrainerError(Exception):
    """A job that cannot be trained as specified. ``str(error)`` is one line for a user."""

    exit_code = EXIT_UNEXPECTED

    def __init__(self, message: str):
        super().__init__(" ".join(str(message).split()))


class SpecError(TrainerError):
    """The spec is valid as a document but cannot be trained (e.g. momentum for Adam)."""

    exit_code = EXIT_SPEC


class BaseModelError(TrainerError):
    """The base model cannot be built: unknown layer for cutAt, unreadable model file, bad weights."""

    exit_code = EXIT_BASE_MODEL


class DatasetError(TrainerError):
    """The dataset cannot be read: not found, a single class, an empty class folder, a bad split."""

    exit_code = EXIT_DATASET


class NetworkError(TrainerError):
    """Something had to be downloaded and the network could not be reached (transient: retried)."""

    exit_code = EXIT_TEMPORARY


class WeightsDownloadError(BaseModelError, NetworkError):
    """ImageNet weights are not cached locally and cannot be downloaded."""

    exit_code = EXIT_TEMPORARY


class DatasetDownloadError(DatasetError, NetworkError):
    """A TFDS dataset is not prepared locally and cannot be downloaded."""

    exit_code = EXIT_TEMPORARY


class OutputError(TrainerError):
    """The output location cannot be read or written now (a storage hiccup: transient, retried)."""

    exit_code = EXIT_TEMPORARY


class OutputConflictError(OutputError):
    """The output location holds another job's complete model (and overwrite is off): permanent."""

    exit_code = EXIT_OUTPUT_CONFLICT


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
