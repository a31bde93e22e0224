"""`headstart watch | logs | fetch`: follow a job as it trains, read its log, bring its model here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import typer

from .common import CONTEXT, KUBECONFIG, LOCAL, NAMESPACE, client, reported


class LiveView:
    """A rich live view of one job: a bar per stage (epochs), the current metrics, the phase and reason."""

    def __init__(self, console: Any):
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.console = console
        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[note]}"), console=console)
        self.tasks: dict[str, Any] = {}
        self.header = self.bars.add_task("", total=None, note="")

    def update(self, job: Any) -> None:
        status = job.status
        phase = status.phase.value if status and status.phase else "Pending"
        reason = f" ({status.reason})" if status and status.reason else ""
        message = status.message if status and status.message else ""
        self.bars.update(self.header, description=f"{job.name}: {phase}{reason}", note=message[:100])
        if status is None:
            return
        done = {s.name: s.epochs_completed for s in status.stages}
        for index, stage in enumerate(job.spec.stages):
            epochs = done.get(stage.name)
            if epochs is None and status.stage == stage.name and status.epoch is not None:
                epochs = status.epoch
            if epochs is None:
                continue
            if stage.name not in self.tasks:
                self.tasks[stage.name] = self.bars.add_task(f"  stage {index + 1} {stage.name}",
                                                            total=stage.epochs, note="")
            metrics = " ".join(f"{k}={v:.4g}" for k, v in sorted(status.metrics.items())
                               if k in ("loss", "accuracy", "val_loss", "val_accuracy")) \
                if status.stage == stage.name else ""
            self.bars.update(self.tasks[stage.name], completed=epochs, note=metrics)


def watch(
    name: str = typer.Argument(..., help="The FineTuneJob's name."),
    timeout: float = typer.Option(24 * 3600, "--timeout", help="Give up after this many seconds (exit 3)."),
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Follow a job live until it ends.

    A bar per stage, the metrics, the phase and why it waits.

    Exit 0 when it succeeds, 1 when it fails, 3 on timeout. The live view goes to standard error, the final
    line to standard output."""
    from rich.console import Console

    with reported("watch"):
        sdk = client(kubeconfig, context, namespace, local)
        console = Console(stderr=True)
        view = LiveView(console)
        with view.bars:
            job = sdk.wait(name, phases={"Succeeded"}, timeout=timeout, callback=view.update)
        model = job.status.model.uri if job.status and job.status.model else "-"
        typer.echo(f"{name} Succeeded: {model}")


def logs(
    name: str = typer.Argument(..., help="The FineTuneJob's name."),
    follow: bool = typer.Option(False, "--follow", "-f", help="Stream new lines, across pod restarts, until "
                                                              "the job ends."),
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Print the trainer's log.

    Of the newest training pod; with -f, of every pod in turn until the job ends."""
    with reported("logs"):
        for line in client(kubeconfig, context, namespace, local).logs(name, follow=follow):
            typer.echo(line)


def fetch(
    name: str = typer.Argument(..., help="The FineTuneJob's name."),
    to: Path = typer.Option(..., "--to", help="The folder to put the model in (created; must be empty)."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace what is in the folder (only once the "
                                                               "download is verified)."),
    kubeconfig: Path | None = KUBECONFIG, context: str | None = CONTEXT, namespace: str | None = NAMESPACE,
    local: bool = LOCAL,
) -> None:
    """Download a job's model, verified.

    Every artifact is checked against its manifest's sha256.

    From s3://, gs:// and file:// directly, from pvc:// through a short-lived helper pod. Nothing is left in
    the folder unless all of it checks out."""
    with reported("fetch"):
        path = client(kubeconfig, context, namespace, local).fetch(name, to, overwrite)
        typer.echo(str(path))
