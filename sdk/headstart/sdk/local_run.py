"""``python -m headstart.sdk.local_run RECORD``: one local job, run for the SDK's local backend.

Runs the trainer in this process on the job in ``RECORD/job.yaml``, writing its output to the folder named
in ``RECORD/output`` and, as it goes, the job's status to ``RECORD/status.json`` and its events to
``RECORD/events.jsonl``. The status is written as the operator writes it in a cluster, with the same
functions: the phase, reason and conditions from a :class:`~headstart.api.verdict.Verdict`
(:func:`apply_verdict`), the trainer's fields from its progress snapshots (:func:`apply_progress`), the
failure from the trainer's exit code (``headstart.api.exitcodes.failure``), so `headstart get/why/watch
--local` show the words the cluster would. The trainer's own lines go to standard output (the backend
sends them to ``RECORD/log``).
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from headstart.api.exitcodes import ExitCode, failure
from headstart.api.progress import ProgressSnapshot
from headstart.api.reasons import Phase, Reason
from headstart.api.verdict import Verdict, needs_patch, now, status_patch

TRAINING_JOB = "local"
"""What status.trainingJob names for a local job (the trainer process on this machine)."""


def write_json_atomic(path: Path, data: Any) -> None:
    """Write ``data`` as JSON to ``path`` through a temporary file beside it, replaced into place.

    Args:
        path: The file to write.
        data: What to write (anything json.dumps takes).
    """
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def read_status(record: Path) -> dict:
    """The job's status as written in ``RECORD/status.json``.

    Args:
        record: The job's record folder.

    Returns:
        The status; empty when the file is missing or is not JSON.
    """
    try:
        return json.loads((record / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def add_event(record: Path, kind: str, reason: str, message: str) -> None:
    """Append an event, stamped with the current time, to ``RECORD/events.jsonl``.

    Args:
        record: The job's record folder.
        kind: The event's type (``Normal`` or ``Warning``).
        reason: The event's reason.
        message: The event's message.
    """
    with open(record / "events.jsonl", "a", encoding="utf-8") as f:
        f.write(json.dumps({"time": now(), "type": kind, "reason": reason, "message": message}) + "\n")


def _merge(record: Path, patch: dict) -> dict:
    """A JSON merge patch onto status.json (None removes a field, nested objects merge)."""
    status = read_status(record)
    for key, value in patch.items():
        if value is None:
            status.pop(key, None)
        elif isinstance(value, dict) and isinstance(status.get(key), dict):
            status[key] = {k: v for k, v in {**status[key], **value}.items() if v is not None}
        else:
            status[key] = value
    write_json_atomic(record / "status.json", status)
    return status


def apply_verdict(record: Path, verdict: Verdict) -> dict:
    """Write a verdict as the operator does (:func:`~headstart.api.verdict.status_patch`), with an event
    on every change of phase or reason (Warning for the reasons that are)."""
    old = read_status(record)
    patch = status_patch(old, verdict, None)
    if not needs_patch(old, patch):
        return old
    status = _merge(record, patch)
    if (old.get("phase"), old.get("reason")) != (verdict.phase.value, verdict.reason.value):
        if verdict.reason.warning or not verdict.reason.quiet:
            add_event(record, "Warning" if verdict.reason.warning else "Normal", verdict.reason.value,
                      f"{verdict.phase}: {verdict.message}")
    return status


def apply_progress(record: Path, snapshot: ProgressSnapshot) -> None:
    """Write the trainer's fields of status from a snapshot, as the operator's progress endpoint does."""
    patch = snapshot.status_patch(read_status(record))
    if patch:
        _merge(record, patch)


def running(record: Path, resumed: str = "") -> Verdict:
    """The Running verdict of a local run, with the start time already recorded (else now).

    Args:
        record: The job's record folder.
        resumed: Appended to the message (a note that the run resumes from a checkpoint, or empty).

    Returns:
        The verdict.
    """
    return Verdict(Phase.RUNNING, Reason.TRAINING, f"training in process {os.getpid()} on this machine{resumed}",
                   created=True, training_job=TRAINING_JOB, start_time=read_status(record).get("startTime") or now())


def reporter_for(record: Path) -> Any:
    """The reporter of a local run: the trainer's snapshots into status.json, and Running once it trains."""
    from headstart.trainer.progress import SnapshotReporter

    class RecordReporter(SnapshotReporter):
        def __init__(self) -> None:
            super().__init__(lambda snapshot, _urgent: apply_progress(record, snapshot))

        def started(self, plan: Any) -> None:
            resumed = f" (resuming stage {plan.resume[0] + 1} after epoch {plan.resume[1]})" if plan.resume else ""
            apply_verdict(record, running(record, resumed))
            super().started(plan)

        def completed(self, result: Any) -> None:
            super().completed(result)
            apply_verdict(record, Verdict(Phase.SUCCEEDED, Reason.SUCCEEDED, "the model is written", created=True,
                                          training_job=TRAINING_JOB, completion_time=now()))

    return RecordReporter()


def main(argv: list[str] | None = None) -> int:
    """Run the local job in ``RECORD`` and record its outcome (the entry point of ``python -m``).

    Args:
        argv: The arguments, one: the record folder (default: ``sys.argv[1:]``).

    Returns:
        The trainer's exit code, or 2 for a wrong number of arguments. A failure other than SIGTERM is
        recorded in status.json as the Failed verdict for that code.
    """
    args = sys.argv[1:] if argv is None else argv
    if len(args) != 1:
        print("usage: python -m headstart.sdk.local_run RECORD", file=sys.stderr)
        return 2
    record = Path(args[0])
    output = (record / "output").read_text().strip()
    root = Path(output).parent

    def resolve(name: str) -> str:
        return str((root / name).resolve())

    from headstart.api import load_job_file
    from headstart.trainer.cli import run_loaded
    from headstart.trainer.reporting import Fanout, LineReporter
    from headstart.trainer.startup import start_tensorflow

    job = load_job_file(str(record / "job.yaml"))
    try:
        start_tensorflow(quiet=True)  # its native start-up lines stay out of the job's log, as for `headstart run`
    except ImportError:
        pass  # run_loaded says in its one line that TensorFlow is missing
    code = run_loaded(job, output, Fanout(LineReporter(), reporter_for(record)), resolve)
    # SIGTERM (143) comes from the backend stopping it (suspend, delete), which records the job's phase itself
    if code not in (ExitCode.SUCCESS, ExitCode.TERMINATED):
        reason, message = failure(int(code), _last_error(record) or "")
        apply_verdict(record, Verdict(Phase.FAILED, reason, message, created=True, training_job=TRAINING_JOB,
                                      completion_time=now()))
    return code


def _last_error(record: Path) -> str | None:
    try:
        lines = (record / "log").read_text(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line.removeprefix("error: ") for line in lines if line.startswith("error: ")]
    return errors[-1] if errors else None


if __name__ == "__main__":
    sys.exit(main())
