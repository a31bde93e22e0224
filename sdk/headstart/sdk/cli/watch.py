"""`headstart watch NAME`: follow a job live until it ends (a bar per stage, the metrics, the phase)."""

from __future__ import annotations

from typing import Any

import typer

from .options import Target, cluster_command
from .reporting import reported


class LiveView:
    """A rich live view of one job: a bar per stage (epochs), the current metrics, the phase and reason. It
    draws nothing until it has seen the job (``update``); ``close`` ends it."""

    def __init__(self, console: Any):
        self.console = console
        self.bars: Any = None
        self.tasks: dict[str, Any] = {}
        self.header: Any = None

    def _start(self) -> None:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TextColumn("{task.fields[note]}"), console=self.console)
        self.header = self.bars.add_task("", total=None, note="")
        self.bars.start()

    def close(self) -> None:
        if self.bars is not None:
            self.bars.stop()

    def update(self, job: Any) -> None:
        if self.bars is None:
            self._start()
        status = job.status
        phase = status.phase.value if status and status.phase else "Pending"
        reason = f" ({status.reason})" if status and status.reason else ""
        message = status.message if status and status.message else ""
        self.bars.update(self.header, description=f"{job.name}: {phase}{reason}", note=message[:100])
        if status is None or isinstance(job.spec, dict):  # no stages to draw for an invalid stored spec
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


@cluster_command
def watch(
    name: str = typer.Argument(..., metavar="NAME", help="The FineTuneJob's name."),
    timeout: float = typer.Option(24 * 3600, "--timeout", metavar="SECONDS",
                                  help="Give up after this many seconds (exit 3)."),
    *, target: Target,
) -> None:
    """Follow a job live until it ends.

    A bar per stage, the metrics, the phase and why it waits. Exit 0 when it succeeds, 1 when it fails, 3 on
    timeout. The live view goes to standard error, the final line to standard output."""
    from rich.console import Console

    with reported("watch"):
        sdk = target.client()
        view = LiveView(Console(stderr=True))
        try:
            job = sdk.wait(name, phases={"Succeeded"}, timeout=timeout, callback=view.update)
        finally:
            view.close()
        model = job.status.model.uri if job.status and job.status.model else "-"
        typer.echo(f"{name} Succeeded: {model}")
