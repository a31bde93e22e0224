"""The trainer's exit codes: the contract between the trainer (which exits with them) and whoever runs it
(the operator's podFailurePolicy and status, the SDK's local backend).

A *permanent* code means running the same job again cannot help (a bad spec, no TensorFlow in the image, a
bad base model, missing or bad data, an output owned by another job): the training Job fails at once.
Every other non-zero code is *transient* (an unexpected error, storage or network unreachable for now, an
interruption, an OOM kill): the Job retries the pod within backoffLimit and the trainer resumes from its
checkpoint. These are the trainer's codes, not the ``headstart`` command line's.
"""

from __future__ import annotations

from enum import IntEnum

from .reasons import Reason


class ExitCode(IntEnum):
    """An exit status of ``python -m headstart.trainer``."""

    SUCCESS = 0
    UNEXPECTED = 1
    """A bug, or anything unforeseen (transient: retried)."""
    SPEC = 2
    """A manifest that does not validate, or a rule only the trainer can check (permanent)."""
    NO_TENSORFLOW = 3
    """The image has no TensorFlow (permanent)."""
    BASE_MODEL = 10
    """The base model cannot be used: unknown cutAt layer, unreadable model or weights (permanent)."""
    DATASET = 11
    """The dataset cannot be read: not found, one class, an empty class folder, a bad split (permanent)."""
    OUTPUT_CONFLICT = 12
    """The output holds another job's complete model and overwrite is off (permanent)."""
    OUTPUT_UNWRITABLE = 13
    """The output location cannot be written at all: no permission, read-only, a file in the way, no such bucket
    (permanent)."""
    CHECKPOINT = 14
    """The output's checkpoint cannot be read (truncated, or another format): nothing was deleted (permanent)."""
    TEMPORARY = 75
    """EX_TEMPFAIL: storage or network unreachable for now (transient)."""
    INTERRUPTED = 130
    """SIGINT (transient)."""
    KILLED = 137
    """SIGKILL, usually the OOM killer (transient; the container then reports OOMKilled)."""
    TERMINATED = 143
    """SIGTERM: the pod was stopped, evicted or preempted (transient)."""

    @property
    def permanent(self) -> bool:
        """Whether retrying cannot help."""
        return self in _REASONS


_REASONS = {
    ExitCode.SPEC: Reason.INVALID_SPEC,
    ExitCode.NO_TENSORFLOW: Reason.BAD_IMAGE,
    ExitCode.BASE_MODEL: Reason.BAD_BASE_MODEL,
    ExitCode.DATASET: Reason.BAD_DATASET,
    ExitCode.OUTPUT_CONFLICT: Reason.OUTPUT_CONFLICT,
    ExitCode.OUTPUT_UNWRITABLE: Reason.OUTPUT_UNWRITABLE,
    ExitCode.CHECKPOINT: Reason.BAD_CHECKPOINT,
}

#: The codes on which the training Job fails at once (its podFailurePolicy), in a stable order.
PERMANENT_EXIT_CODES = tuple(int(code) for code in _REASONS)


def is_permanent(code: int) -> bool:
    """Whether a trainer exit code says retrying cannot help."""
    return code in PERMANENT_EXIT_CODES


def reason_for_exit(code: int) -> Reason:
    """The reason a job failed with when its trainer exited with ``code`` (TrainerFailed for any code that
    is not permanent: those fail the job only once its retries are spent)."""
    for known, reason in _REASONS.items():
        if code == known:
            return reason
    return Reason.TRAINER_FAILED


def failure(code: int | None, said: str = "") -> tuple[Reason, str]:
    """(reason, message) of a trainer that exited with ``code`` and said ``said`` (its one-line error):
    the words the operator and the SDK's local backend both use."""
    if code is not None and is_permanent(code):
        reason = reason_for_exit(code)
        return reason, f"{reason.meaning} (exit code {code}, not retried): {said}" if said else \
            f"{reason.meaning} (exit {code})"
    text = f"the trainer exited with code {code}"
    return Reason.TRAINER_FAILED, f"{text}: {said}" if said else text
