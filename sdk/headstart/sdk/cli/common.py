"""What every cluster command shares: kubectl's connection flags, the SDK's errors as exit codes, output
formats. Cheap to import: the SDK's client (and the kubernetes client) load when a command runs."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import typer

KUBECONFIG = typer.Option(None, "--kubeconfig", help="Path of the kubeconfig (default: $KUBECONFIG, "
                          "~/.kube/config).")
CONTEXT = typer.Option(None, "--context", help="The kubeconfig context to use.")
NAMESPACE = typer.Option(None, "--namespace", "-n", help="The namespace (default: the context's).")
LOCAL = typer.Option(False, "--local", help="Jobs of this machine (./headstart-runs) instead of a cluster.")
OUTPUT = typer.Option("table", "--output", "-o", help="table, json or yaml.")


def client(kubeconfig: Path | None, context: str | None, namespace: str | None, local: bool = False) -> Any:
    from headstart.sdk.client import Client

    if local:
        return Client(backend="local")
    return Client(namespace=namespace, context=context, kubeconfig=kubeconfig)


@contextmanager
def reported(command: str) -> Iterator[None]:
    """Run a command's body: an SDK error is one line on stderr and its exit code (1 failed or refused,
    3 timed out); a bad argument is a usage error (2); Ctrl-C is 130."""
    from headstart.sdk.errors import HeadstartError, InvalidJob

    try:
        yield
    except InvalidJob as exc:
        for line in exc.lines:
            typer.echo(f"headstart {command}: {line}", err=True)
        raise typer.Exit(1) from None
    except HeadstartError as exc:
        typer.echo(f"headstart {command}: {exc}", err=True)
        raise typer.Exit(exc.exit_code) from None
    except ValueError as exc:
        typer.echo(f"headstart {command}: {exc}", err=True)
        raise typer.Exit(2) from None
    except KeyboardInterrupt:
        typer.echo(f"headstart {command}: interrupted", err=True)
        raise typer.Exit(130) from None


def check_output(value: str, command: str, allowed: tuple[str, ...] = ("table", "json", "yaml")) -> str:
    if value not in allowed:
        typer.echo(f"headstart {command}: --output: must be one of {', '.join(allowed)} (got {value!r})", err=True)
        raise typer.Exit(2)
    return value


def wire(job: Any) -> dict:
    """A job as the API server shows it (camelCase), status included."""
    doc = {"apiVersion": job.api_version, "kind": job.kind,
           "metadata": job.metadata.model_dump(by_alias=True, mode="json", exclude_none=True),
           "spec": job.spec.model_dump(by_alias=True, mode="json", exclude_unset=True, exclude_none=True)}
    if job.status is not None:
        doc["status"] = job.status.model_dump(by_alias=True, mode="json", exclude_none=True)
    return doc


def print_documents(docs: list[dict], output: str, single: bool) -> None:
    if output == "json":
        body: Any = docs[0] if single else {"apiVersion": "v1", "kind": "List", "items": docs}
        typer.echo(json.dumps(body, indent=2))
    else:
        import yaml

        body = docs[0] if single else {"apiVersion": "v1", "kind": "List", "items": docs}
        typer.echo(yaml.safe_dump(body, sort_keys=False), nl=False)


def age(job: Any) -> str:
    import datetime as dt

    created = job.metadata.creation_timestamp
    if created is None:
        return "-"
    seconds = int((dt.datetime.now(dt.timezone.utc) - created).total_seconds())
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds // size}{unit}"
    return f"{max(seconds, 0)}s"


def row(job: Any, all_namespaces: bool) -> list[str]:
    status = job.status
    phase = status.phase.value if status and status.phase else "-"
    stage = status.stage if status and status.stage else "-"
    epoch = f"{status.epoch}/{status.epochs}" if status and status.epoch is not None and status.epochs else "-"
    accuracy = status.metrics.get("val_accuracy") if status and status.metrics else None
    cells = [job.name, phase, (status.reason if status and status.reason else "-"), stage, epoch,
             "-" if accuracy is None else f"{accuracy:.3f}", age(job)]
    return [job.metadata.namespace or "-", *cells] if all_namespaces else cells


def print_table(jobs: list[Any], all_namespaces: bool) -> None:
    from rich.console import Console
    from rich.table import Table, box

    table = Table(box=box.SIMPLE_HEAD, pad_edge=False, show_edge=False)
    for column in (["NAMESPACE"] if all_namespaces else []) + ["NAME", "PHASE", "REASON", "STAGE", "EPOCH",
                                                                "VAL-ACC", "AGE"]:
        table.add_column(column, no_wrap=True)
    for job in jobs:
        table.add_row(*row(job, all_namespaces))
    Console(file=sys.stdout, width=200).print(table)

