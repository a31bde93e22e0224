"""Rich progress for local runs: a bar per stage (epochs) and one for the current epoch (batches), then a
summary table. No TensorFlow here."""

from __future__ import annotations

from typing import Any

from .reporting import Progress, Reporter, RunPlan, StagePlan, StageResult, TrainResult, _fmt_metrics


class RichReporter(Reporter):
    def __init__(self, console: Any | None = None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            TextColumn,
            TimeElapsedColumn,
        )
        from rich.progress import Progress as Bars

        self.console = console or Console()
        self.bars = Bars(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                         TimeElapsedColumn(), TextColumn("{task.fields[metrics]}"), console=self.console)
        self.stage_task: Any = None
        self.epoch_task: Any = None
        self.epochs = 0
        self.steps: int | None = None

    def started(self, plan: RunPlan) -> None:
        counts = ", ".join(f"{k} {v}" for k, v in plan.examples.items() if v is not None)
        self.console.print(f"[bold]{plan.job_name}[/]: {len(plan.class_names)} classes ({counts}) -> "
                           f"{plan.output_uri}")
        if plan.skipped_files:
            self.console.print(f"[yellow]skipped {plan.skipped_files} unreadable or non-image files[/]")
        if plan.resume:
            self.console.print(f"resuming stage {plan.resume[0] + 1} after epoch {plan.resume[1]}")
        self.bars.start()

    def stage_started(self, stage: StagePlan, initial_epoch: int, steps: int | None) -> None:
        how = ", cached features" if stage.feature_cache else ""
        self.stage_task = self.bars.add_task(f"stage {stage.index + 1} {stage.name} ({stage.train_base}{how})",
                                             total=stage.epochs, completed=initial_epoch, metrics="")
        self.steps = steps
        self.epochs = stage.epochs
        self.epoch_task = self.bars.add_task(f"  epoch {initial_epoch + 1}/{stage.epochs}", total=steps,
                                             metrics="")

    def batch_ended(self, stage: StagePlan, batch: int, steps: int | None) -> None:
        if self.epoch_task is not None:
            self.bars.update(self.epoch_task, completed=batch)

    def epoch_ended(self, progress: Progress) -> None:
        self.bars.update(self.stage_task, completed=progress.epoch, metrics=_fmt_metrics(progress.metrics))
        if progress.epoch < progress.epochs:
            self.bars.reset(self.epoch_task, total=self.steps,
                            description=f"  epoch {progress.epoch + 1}/{progress.epochs}")

    def stage_ended(self, result: StageResult) -> None:
        if self.epoch_task is not None:
            self.bars.remove_task(self.epoch_task)
            self.epoch_task = None

    def message(self, text: str) -> None:
        self.console.print(text)

    def _stop(self) -> None:
        self.bars.stop()

    def completed(self, result: TrainResult) -> None:
        from rich.table import Table

        self._stop()
        if result.already_complete:
            self.console.print(f"already complete: {result.output_uri} holds this job's model (remove it, or set "
                               "spec.output.overwrite, to train again)")
        table = Table(title=f"{result.job_name}")
        for col in ("stage", "epochs", "best val accuracy", "time"):
            table.add_column(col, justify="left" if col == "stage" else "right")
        for s in result.stages:
            best = "-" if s.best_val_accuracy is None else f"{s.best_val_accuracy:.4f}"
            early = " (early stop)" if s.stopped_early else ""
            table.add_row(s.name, f"{s.epochs_completed}/{s.epochs}{early}", best, f"{s.duration_seconds:.1f}s")
        self.console.print(table)
        if result.metrics:
            self.console.print(_fmt_metrics(result.metrics))
        self.console.print(f"model: {result.model.uri} (manifest sha256 {result.model.sha256[:16]}...)")

    def failed(self, reason: str) -> None:
        self._stop()
