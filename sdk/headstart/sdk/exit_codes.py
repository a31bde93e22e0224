"""The exit codes of the `headstart` command line: one table, for every command (README, `headstart --help`).

The trainer's own exit codes (``python -m headstart.trainer``, read by the operator to tell a permanent
failure from a transient one) are another contract, documented in trainer/README.md; `headstart run` maps
them onto this table (:func:`from_trainer`).
"""

from __future__ import annotations

OK = 0
FAILED = 1
USAGE = 2
TIMED_OUT = 3
INTERNAL = 4
INTERRUPTED = 130

#: (code, what it means), in the order the README and ``headstart --help`` show them.
TABLE: tuple[tuple[int, str], ...] = (
    (OK, "success"),
    (FAILED, "failed: a job failed, a manifest is invalid, or the cluster said no"),
    (USAGE, "usage: an unknown option, a bad flag value, a missing argument"),
    (TIMED_OUT, "a wait timed out (--wait, watch --timeout)"),
    (INTERNAL, "internal error: a bug (HEADSTART_DEBUG=1 shows the traceback)"),
    (INTERRUPTED, "interrupted (Ctrl-C)"),
)


def from_trainer(code: int) -> int:
    """The CLI's code for the trainer's: success, an interrupt, or (any other code) the job failed."""
    if code == 0:
        return OK
    if code == INTERRUPTED:
        return INTERRUPTED
    return FAILED


def epilog() -> str:
    """The table as `headstart --help` ends with it (click keeps a paragraph after a \\b line as it is)."""
    rows = "\n".join(f"  {code:<4} {meaning}" for code, meaning in TABLE)
    return f"Exit codes:\n\n\b\n{rows}"
