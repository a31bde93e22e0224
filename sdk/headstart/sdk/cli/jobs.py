"""`headstart submit | get | list | delete | suspend | resume | why`: FineTuneJobs in a cluster (or, with
--local, on this machine). Results on stdout, errors and progress on stderr."""

from __future__ import annotations

from pathlib import Path

import typer

from .common import (
    CONTEXT,
    KUBECONFIG,
    LOCAL,
    NAMESPACE,
    OUTPUT,
    check_output,
    client,
    print_documents,
    print_table,
    reported,
    wire,
)


def submit(
    file: str = typer.Option(..., "--filename", "-f", help="The FineTuneJob manifest (YAML or JSON; - for stdin)."),
    wait: bool = typer.Option(False, "--wait", help="Wait until it succeeds (exit 1 if it fails, 3 on timeout)."),
    follow: bool = typer.Option(False, "--follow", help="Stream the training log while waiting (implies --wait)."),
    timeout: float = typer.Option(24 * 3600, "--timeout", help="Seconds --wait waits at most."),
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Create a FineTuneJob from a manifest.

    The manifest is checked first, as `headstart validate` does."""
    with reported("submit"):
        sdk = client(kubeconfig, context, namespace, local)
        name = sdk.submit(file)
        typer.echo(f"finetunejob/{name} created", err=True)
        if follow:
            for line in sdk.logs(name, follow=True, timeout=timeout):
                typer.echo(line, err=True)
        if wait or follow:
            job = sdk.wait(name, timeout=timeout,
                           callback=lambda j: typer.echo(_progress_line(j), err=True))
            typer.echo(f"{name} {job.status.phase.value}: {job.status.model.uri if job.status.model else ''}")
        else:
            typer.echo(name)


def _progress_line(job) -> str:
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


def get(
    name: str = typer.Argument(..., help="The FineTuneJob's name."),
    output: str = OUTPUT,
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Show one FineTuneJob.

    A table row, or the whole object with -o json|yaml."""
    check_output(output, "get")
    with reported("get"):
        job = client(kubeconfig, context, namespace, local).get(name)
        if output == "table":
            print_table([job], all_namespaces=False)
        else:
            print_documents([wire(job)], output, single=True)


def list_jobs(
    all_namespaces: bool = typer.Option(False, "--all-namespaces", "-A", help="Jobs of every namespace."),
    selector: str | None = typer.Option(None, "--selector", "-l", help="Label selector, e.g. team=vision."),
    output: str = OUTPUT,
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """List FineTuneJobs (of the namespace, or -A all)."""
    check_output(output, "list")
    with reported("list"):
        jobs = client(kubeconfig, context, namespace, local).list(selector, all_namespaces)
        if output == "table":
            if not jobs:
                typer.echo("no FineTuneJobs found", err=True)
                return
            print_table(jobs, all_namespaces)
        else:
            print_documents([wire(j) for j in jobs], output, single=False)


def delete(
    name: str = typer.Argument(..., help="The FineTuneJob's name."),
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Delete a FineTuneJob.

    Its Job, pods and the rest go with it; its model stays in storage."""
    with reported("delete"):
        client(kubeconfig, context, namespace, local).delete(name)
        typer.echo(f"finetunejob/{name} deleted")


def suspend(
    name: str = typer.Argument(..., help="The FineTuneJob's name."),
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Suspend a job: its pod stops.

    Sets spec.runPolicy.suspend; `headstart resume` continues from the last checkpoint."""
    with reported("suspend"):
        client(kubeconfig, context, namespace, local).suspend(name)
        typer.echo(f"finetunejob/{name} suspended")


def resume(
    name: str = typer.Argument(..., help="The FineTuneJob's name."),
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Resume a suspended job.

    The trainer continues from its last checkpoint."""
    with reported("resume"):
        client(kubeconfig, context, namespace, local).resume(name)
        typer.echo(f"finetunejob/{name} resumed")


def why(
    name: str = typer.Argument(..., help="The FineTuneJob's name."),
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Explain a job's state in plain words.

    What it is doing, what it waits for or why it failed, recent events, and what to do next."""
    from headstart.sdk.explain import explain, render

    with reported("why"):
        sdk = client(kubeconfig, context, namespace, local)
        job = sdk.get(name)
        for line in render(explain(job, sdk.events(name))):
            typer.echo(line)
