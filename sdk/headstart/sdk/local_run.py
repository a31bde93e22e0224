"""``python -m headstart.sdk.local_run RECORD``: one local job, run for the SDK's local backend.

Runs the trainer in this process on the job in ``RECORD/job.yaml``, writing its output to the folder named
in ``RECORD/output`` and, as it goes, the job's status (the same FineTuneJobStatus a cluster shows) to
``RECORD/status.json`` and its events to ``RECORD/events.jsonl``. The trainer's own lines go to standard
output (the backend sends them to ``RECORD/log``).
"""

from __future__ import annotations

import datetime as dt
import json
import os
import sys
from pathlib import Path
from typing import Any

from headstart.trainer.reporting import LineReporter, Progress, Reporter, RunPlan, StagePlan, StageResult, TrainResult


def now() -> str:
    return dt.datetime.now(dt.timezone.utc).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def write_json_atomic(path: Path, data: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1))
    tmp.replace(path)


def read_status(record: Path) -> dict:
    try:
        return json.loads((record / "status.json").read_text())
    except (OSError, ValueError):
        return {}


def set_status(record: Path, fields: dict, event: tuple[str, str, str] | None = None) -> dict:
    """Merge ``fields`` into the record's status (None removes a field); append an event (type, reason,
    message) if given."""
    status = read_status(record)
    for key, value in fields.items():
        if value is None:
            status.pop(key, None)
        else:
            status[key] = value
    write_json_atomic(record / "status.json", status)
    if event is not None:
        kind, reason, message = event
        with open(record / "events.jsonl", "a", encoding="utf-8") as f:
            f.write(json.dumps({"time": now(), "type": kind, "reason": reason, "message": message}) + "\n")
    return status


class RecordReporter(Reporter):
    """Keeps ``RECORD/status.json`` true as the trainer reports."""

    def __init__(self, record: Path):
        self.record = record
        self.stages: list[dict] = []

    def started(self, plan: RunPlan) -> None:
        resumed = f" (resuming stage {plan.resume[0] + 1} after epoch {plan.resume[1]})" if plan.resume else ""
        set_status(self.record, {"phase": "Running", "reason": "Training", "message": f"training{resumed}",
                                 "startTime": read_status(self.record).get("startTime") or now()},
                   ("Normal", "Started", f"training {plan.job_name}: {len(plan.class_names)} classes{resumed}"))

    def stage_started(self, stage: StagePlan, initial_epoch: int, steps: int | None) -> None:
        set_status(self.record, {"stage": stage.name, "stageIndex": stage.index, "epoch": initial_epoch,
                                 "epochs": stage.epochs},
                   ("Normal", "StageStarted", f"stage {stage.index + 1} {stage.name}: {stage.epochs} epochs"))

    def epoch_ended(self, progress: Progress) -> None:
        set_status(self.record, {"stage": progress.stage, "stageIndex": progress.stage_index,
                                 "epoch": progress.epoch, "epochs": progress.epochs, "metrics": progress.metrics})

    def stage_ended(self, result: StageResult) -> None:
        entry = {"name": result.name, "epochsCompleted": result.epochs_completed,
                 "durationSeconds": round(result.duration_seconds, 3), "stoppedEarly": result.stopped_early}
        if result.best_val_accuracy is not None:
            entry["bestValAccuracy"] = result.best_val_accuracy
        self.stages = [s for s in self.stages if s["name"] != result.name] + [entry]
        set_status(self.record, {"stages": self.stages},
                   ("Normal", "StageCompleted", f"stage {result.index + 1} {result.name}: "
                    f"{result.epochs_completed} epochs"))

    def completed(self, result: TrainResult) -> None:
        model = {"uri": result.model.uri, "sha256": result.model.sha256, "formats": list(result.model.formats),
                 "classNames": list(result.model.class_names)}
        set_status(self.record, {"phase": "Succeeded", "reason": "Completed", "message": "the model is written",
                                 "model": model, "metrics": {**read_status(self.record).get("metrics", {}),
                                                             **result.metrics},
                                 "completionTime": now()},
                   ("Normal", "Succeeded", f"model written to {result.model.uri}"))

    def failed(self, reason: str) -> None:
        set_status(self.record, {"phase": "Failed", "reason": "TrainingFailed", "message": reason,
                                 "completionTime": now()}, ("Warning", "Failed", reason))


class Both(Reporter):
    def __init__(self, *reporters: Reporter):
        self.reporters = reporters

    def __getattribute__(self, name: str) -> Any:
        if name in ("started", "stage_started", "batch_ended", "epoch_ended", "stage_ended", "message",
                    "completed", "failed"):
            return lambda *args: [getattr(r, name)(*args) for r in object.__getattribute__(self, "reporters")]
        return object.__getattribute__(self, name)


def main(argv: list[str] | None = None) -> int:
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

    job = load_job_file(str(record / "job.yaml"))
    code = run_loaded(job, output, Both(LineReporter(), RecordReporter(record)), resolve)
    if code != 0 and read_status(record).get("phase") != "Failed":  # not a TrainerError: a bug, an interrupt
        said = _last_error(record) or f"the trainer exited with {code}"
        set_status(record, {"phase": "Failed", "reason": "Interrupted" if code == 130 else "TrainerError",
                            "message": said, "completionTime": now()}, ("Warning", "Failed", said))
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
