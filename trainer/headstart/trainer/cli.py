"""Shared by ``python -m headstart.trainer`` and ``headstart run``: load a job file, run it, and turn
every failure into one line and an exit code. Imports TensorFlow only when a job runs."""

from __future__ import annotations

import importlib.util
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING

from headstart.api.exitcodes import ExitCode
from headstart.api.storage import StorageError
from headstart.api.uris import redact_text

from . import termination
from .errors import OutputError, TrainerError
from .reporting import Reporter

if TYPE_CHECKING:
    from headstart.api import FineTuneJob

INSTALL_HINT = "the trainer needs TensorFlow: pip install 'headstart[trainer]'"


def tensorflow_missing() -> bool:
    return importlib.util.find_spec("tensorflow") is None


def run_file(path: str, output: str | None, reporter: Reporter,
             resolve_from_job: Callable[[str], str] | None, *, traceback_on_bug: bool = False) -> int:
    """Run the job in a manifest file; returns the process exit code (0 on success)."""
    from headstart.api import ManifestError, load_job_file

    def fail(line: str) -> None:
        print(f"error: {redact_text(line)}", file=sys.stderr, flush=True)

    try:
        job = load_job_file(path)
    except ManifestError as exc:
        for line in exc.lines:
            fail(line)
        return ExitCode.SPEC
    return run_loaded(job, output, reporter, resolve_from_job, traceback_on_bug=traceback_on_bug)


def run_loaded(job: FineTuneJob, output: str | None, reporter: Reporter,
               resolve_from_job: Callable[[str], str] | None, *, traceback_on_bug: bool = False) -> int:
    """Run a loaded job; returns the process exit code (0 on success)."""

    def fail(line: str) -> None:
        print(f"error: {redact_text(line)}", file=sys.stderr, flush=True)

    if tensorflow_missing():
        fail(INSTALL_HINT)
        return ExitCode.NO_TENSORFLOW
    try:
        with termination.graceful():  # before TensorFlow is imported: a SIGTERM from now on is graceful
            from .runner import run_job

            run_job(job, output, reporter, resolve_from_job)
    except TrainerError as exc:
        fail(str(exc))
        return exc.exit_code
    except StorageError as exc:  # a URI no file system opens: an output (or input) location error
        fail(str(exc))
        return OutputError.exit_code
    except KeyboardInterrupt:
        fail("interrupted; run the same job again to resume from its last checkpoint")
        return ExitCode.INTERRUPTED
    except Exception as exc:  # a bug, not bad input: one line, the traceback only when asked
        if traceback_on_bug or os.environ.get("HEADSTART_DEBUG"):
            import traceback

            print(redact_text(traceback.format_exc()), file=sys.stderr, end="", flush=True)
        reason = str(exc).strip().splitlines()
        fail(f"unexpected {type(exc).__name__}: {reason[0] if reason else ''} (HEADSTART_DEBUG=1 shows the "
             "traceback)")
        return ExitCode.UNEXPECTED
    return ExitCode.SUCCESS
