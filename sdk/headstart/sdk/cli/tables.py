"""How jobs are shown: kubectl's table (and ``-o wide``), the object as JSON or YAML, ``-o name``."""

from __future__ import annotations

import datetime as dt
import json
import sys
from typing import Any

import typer

FORMATS = ("table", "wide", "json", "yaml", "name")
COLUMNS = ("NAME", "PHASE", "REASON", "STAGE", "EPOCH", "VAL-ACC", "AGE")
WIDE_COLUMNS = ("TRAINING-JOB", "MODEL", "MESSAGE")


def wire(job: Any) -> dict:
    """A job as the API server shows it (camelCase), status included; an invalid stored spec as stored."""
    spec = job.spec if isinstance(job.spec, dict) else \
        job.spec.model_dump(by_alias=True, mode="json", exclude_unset=True, exclude_none=True)
    doc = {"apiVersion": job.api_version, "kind": job.kind,
           "metadata": job.metadata.model_dump(by_alias=True, mode="json", exclude_none=True), "spec": spec}
    if job.status is not None:
        doc["status"] = job.status.model_dump(by_alias=True, mode="json", exclude_none=True)
    return doc


def print_jobs(jobs: list[Any], output: str, all_namespaces: bool = False, single: bool = False) -> None:
    """Jobs on standard output in the format ``-o`` names."""
    if output == "name":
        for job in jobs:
            typer.echo(f"finetunejob.headstart.dev/{job.name}")
    elif output in ("table", "wide"):
        print_table(jobs, all_namespaces, wide=output == "wide")
    else:
        docs = [wire(job) for job in jobs]
        body: Any = docs[0] if single else {"apiVersion": "v1", "kind": "List", "items": docs}
        if output == "json":
            typer.echo(json.dumps(body, indent=2))
        else:
            import yaml

            typer.echo(yaml.safe_dump(body, sort_keys=False), nl=False)


def picture_lines(job: Any) -> list[str]:
    """Where the model card's pictures are (status.model.pictures, as its manifest lists them)."""
    model = job.status.model if job.status is not None else None
    if model is None or not model.pictures:
        return []
    return [f"{name}: {model.uri.rstrip('/')}/{name}" for name in model.pictures]


def sweep_lines(job: Any) -> list[str]:
    """What each sweeping stage chose (status.stages[].candidates)."""
    lines = []
    for stage in job.status.stages if job.status is not None else []:
        chosen = next((c for c in stage.candidates or [] if c.chosen), None)
        if chosen is not None:
            value = "not finite" if chosen.value is None else f"{chosen.value:.4f}"
            lines.append(f"sweep {stage.name}: learningRate {chosen.learning_rate:g}, dropout {chosen.dropout:g} "
                         f"continued, the best of {len(stage.candidates)} ({chosen.monitor} {value})")
    return lines


def age(job: Any) -> str:
    """kubectl's AGE: 5s, 3m, 2h, 4d."""
    created = job.metadata.creation_timestamp
    if created is None:
        return "-"
    seconds = int((dt.datetime.now(dt.timezone.utc) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def row(job: Any, all_namespaces: bool = False, wide: bool = False) -> list[str]:
    """One job's cells, in the order of COLUMNS (NAMESPACE first with -A, WIDE_COLUMNS last with -o wide)."""
    status = job.status
    phase = status.phase.value if status and status.phase else "-"
    stage = status.stage if status and status.stage else "-"
    epoch = f"{status.epoch}/{status.epochs}" if status and status.epoch is not None and status.epochs else "-"
    accuracy = status.metrics.get("val_accuracy") if status and status.metrics else None
    cells = [job.name, phase, (status.reason if status and status.reason else "-"), stage, epoch,
             "-" if accuracy is None else f"{accuracy:.3f}", age(job)]
    if wide:
        cells += [(status.training_job if status else None) or "-",
                  (status.model.uri if status and status.model else None) or "-",
                  (status.message if status else None) or "-"]
    return [job.metadata.namespace or "-", *cells] if all_namespaces else cells


def print_table(jobs: list[Any], all_namespaces: bool, wide: bool = False) -> None:
    """kubectl's plain table: a header, a row per job, no borders."""
    from rich.console import Console
    from rich.table import Table, box

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in (["NAMESPACE"] if all_namespaces else []) + list(COLUMNS) + (list(WIDE_COLUMNS) if wide else []):
        table.add_column(column, no_wrap=True)
    for job in jobs:
        table.add_row(*row(job, all_namespaces, wide))
    Console(file=sys.stdout, width=400 if wide else 200).print(table)


def progress_line(job: Any) -> str:
    """One line of a job's progress (``submit --wait``)."""
    status = job.status
    if status is None or status.phase is None:
        return f"{job.name}: submitted"
    parts = [f"{job.name}: {status.phase.value}"]
    if status.reason:
        parts.append(status.reason)
    if status.stage:
        parts.append(f"stage {status.stage} epoch {status.epoch}/{status.epochs}")
    if status.metrics.get("val_accuracy") is not None:
        parts.append(f"val_accuracy {status.metrics['val_accuracy']:.3f}")
    return " ".join(parts)
