"""Progress reporting: a small interface the runner calls, and two local implementations.

The runner calls a :class:`Reporter`; every method has a no-op default so an implementation overrides
only what it needs. In a training pod, ``progress.PodReporter`` turns the same events into the snapshots
the operator's progress endpoint takes; locally, the SDK writes the job's status from them. This module
does not import TensorFlow.
"""

from __future__ import annotations

import sys
from dataclasses import asdict, dataclass, field
from typing import Any, TextIO

from headstart.api.uris import redact_text


@dataclass(frozen=True)
class StagePlan:
    """One stage as planned: in RunPlan.stages, and what ``stage_started`` and ``batch_ended`` get."""

    name: str
    index: int
    epochs: int
    train_base: str
    feature_cache: bool
    """Whether this stage trains the head on features computed once (frozen base, no augmentation)."""


@dataclass(frozen=True)
class RunPlan:
    """What is about to run, reported once before training."""

    job_name: str
    output_uri: str
    stages: list[StagePlan]
    class_names: list[str]
    examples: dict[str, int | None]
    """Images per split (train, validation, test); None when unknown."""
    skipped_files: int = 0
    """Corrupt or non-image files skipped in an image folder."""
    resume: tuple[int, int] | None = None
    """(stage index, epochs already done in it) when resuming from a checkpoint."""
    completed: tuple[StageResult, ...] = ()
    """The stages a checkpoint says are done (by an earlier run of the same job), in order."""


@dataclass(frozen=True)
class Progress:
    """The end of one epoch."""

    stage: str
    stage_index: int
    epoch: int
    """Epochs done in this stage, from 1."""
    epochs: int
    metrics: dict[str, float]
    """Keras names: loss, accuracy, val_loss, val_accuracy, learning_rate."""


@dataclass
class StageResult:
    """The outcome of one stage (the operator copies name..stopped_early into status.stages)."""

    name: str
    index: int
    epochs: int
    epochs_completed: int
    best_val_accuracy: float | None
    duration_seconds: float
    stopped_early: bool = False
    feature_cache: bool = False
    history: dict[str, list[float]] = field(default_factory=dict)
    candidates: list[dict] = field(default_factory=list)
    """A sweeping stage's candidates (sweep.Outcome.to_dict), in the order they trained."""

    def to_dict(self) -> dict:
        """The result as a plain dict (dataclasses.asdict): what checkpoints and metrics.json record."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> StageResult:
        """A result from the dict :meth:`to_dict` made.

        Args:
            data: The fields, by name.

        Returns:
            The result.
        """
        return cls(**data)


@dataclass(frozen=True)
class ModelInfo:
    """The model written: status.model of a FineTuneJob."""

    uri: str
    sha256: str
    """sha256 of manifest.json, which holds the sha256 of every artifact."""
    formats: list[str]
    class_names: list[str]
    pictures: list[str] = field(default_factory=list)
    """The model card's pictures at the output (curves.png, confusion.png), as the manifest lists them."""


@dataclass
class TrainResult:
    """What a run did: its stages, final metrics and model (``completed`` gets it, run_job returns it)."""

    job_name: str
    output_uri: str
    stages: list[StageResult]
    metrics: dict[str, float]
    """Final metrics of the model written: val_loss, val_accuracy, test_loss, test_accuracy (as available)."""
    model: ModelInfo
    skipped_files: int = 0
    duration_seconds: float = 0.0
    resumed: bool = False
    already_complete: bool = False
    """The output already held this job's complete model; nothing was trained."""


class Reporter:
    """Receives a run's progress, in this order: ``started``, then per stage ``stage_started``, its
    ``batch_ended`` and ``epoch_ended`` calls and ``stage_ended``, then ``completed`` (or ``failed``);
    ``message`` any time. Override what you need: every method defaults to doing nothing. An exception a
    method raises is printed once and stops nothing (the runner wraps reporters in :class:`Fanout`)."""

    def started(self, plan: RunPlan) -> None:
        """Once, before training.

        Args:
            plan: What will run: the stages, the classes, the examples per split, and where a resumed run
                starts (``plan.resume``) with the stages an earlier run finished (``plan.completed``).
        """

    def stage_started(self, stage: StagePlan, initial_epoch: int, steps: int | None) -> None:
        """A stage begins (or resumes).

        Args:
            stage: The stage.
            initial_epoch: Epochs of it already done (0 unless resumed).
            steps: Batches per epoch, None when unknown.
        """

    def batch_ended(self, stage: StagePlan, batch: int, steps: int | None) -> None:
        """A training batch ended (for progress bars).

        Args:
            stage: The stage.
            batch: Batches done in this epoch, from 1.
            steps: Batches per epoch, None when unknown.
        """

    def epoch_ended(self, progress: Progress) -> None:
        """An epoch ended.

        Args:
            progress: The stage, the epoch (from 1) of its epochs, and the metrics (Keras names).
        """

    def stage_ended(self, result: StageResult) -> None:
        """A stage ended.

        Args:
            result: Its epochs completed, best validation accuracy, duration, whether it stopped early.
        """

    def message(self, text: str) -> None:
        """A line for the user (what is being written where, how many replicas train)."""

    def completed(self, result: TrainResult) -> None:
        """The model is written.

        Args:
            result: The stages, the final metrics and the model (URI, manifest digest, formats, classes).
        """

    def failed(self, reason: str) -> None:
        """The run failed.

        Args:
            reason: The one-line error (credentials of URIs redacted), as the trainer prints it.
        """


def _fmt_metrics(metrics: dict[str, float]) -> str:
    return " ".join(f"{k}={v:.4g}" for k, v in metrics.items())


class LineReporter(Reporter):
    """One plain line per event: for logs (a training pod) and pipes."""

    def __init__(self, stream: TextIO | None = None):
        self.stream = stream or sys.stdout

    def _say(self, text: str) -> None:
        print(redact_text(text), file=self.stream, flush=True)

    def started(self, plan: RunPlan) -> None:
        """Say the job, its classes, examples per split and output; then skipped files and where it resumes."""
        counts = ", ".join(f"{k} {v}" for k, v in plan.examples.items() if v is not None)
        self._say(f"job {plan.job_name}: {len(plan.class_names)} classes, {counts} -> {plan.output_uri}")
        if plan.skipped_files:
            self._say(f"skipped {plan.skipped_files} unreadable or non-image files")
        if plan.resume:
            self._say(f"resuming stage {plan.resume[0] + 1} after epoch {plan.resume[1]}")

    def stage_started(self, stage: StagePlan, initial_epoch: int, steps: int | None) -> None:
        """Say the stage, its epochs and trainBase, and whether it trains on cached features."""
        how = " (on cached features)" if stage.feature_cache else ""
        self._say(f"stage {stage.index + 1} {stage.name}: {stage.epochs} epochs, trainBase "
                  f"{stage.train_base}{how}")

    def epoch_ended(self, progress: Progress) -> None:
        """Say the stage, the epoch of its epochs and the epoch's metrics."""
        self._say(f"stage {progress.stage_index + 1} {progress.stage} epoch {progress.epoch}/"
                  f"{progress.epochs} {_fmt_metrics(progress.metrics)}")

    def stage_ended(self, result: StageResult) -> None:
        """Say the stage's epochs completed, whether it stopped early, its best val_accuracy and its duration."""
        best = "-" if result.best_val_accuracy is None else f"{result.best_val_accuracy:.4f}"
        early = " (stopped early)" if result.stopped_early else ""
        self._say(f"stage {result.index + 1} {result.name} done: {result.epochs_completed} epochs{early}, "
                  f"best val_accuracy {best}, {result.duration_seconds:.1f}s")

    def message(self, text: str) -> None:
        """Print the message as it is (credentials of URIs redacted, as on every line)."""
        self._say(text)

    def completed(self, result: TrainResult) -> None:
        """Say the final metrics and the model's URI and sha256 (and first, when nothing trained, that it was there)."""
        if result.already_complete:
            self._say(f"already complete: {result.output_uri} holds this job's model (remove it, or set "
                      "spec.output.overwrite, to train again)")
        self._say(f"done: {_fmt_metrics(result.metrics)} model {result.model.uri} "
                  f"sha256 {result.model.sha256}")

    def failed(self, reason: str) -> None:
        """Say ``failed:`` and the reason."""
        self._say(f"failed: {reason}")


class Fanout(Reporter):
    """Every event to each of several reporters, in order. An exception in one of them (say, a progress
    update that failed) is printed once per method on standard error and stops neither the training nor
    the others; KeyboardInterrupt still stops it."""

    def __init__(self, *reporters: Reporter | Any, stream: TextIO | None = None):
        self.reporters = reporters
        self.stream = stream
        self.warned: set[str] = set()

    def _each(self, name: str, *args: Any) -> None:
        for reporter in self.reporters:
            try:
                getattr(reporter, name)(*args)
            except Exception as exc:  # noqa: BLE001 - progress is best effort, training goes on
                if name not in self.warned:
                    self.warned.add(name)
                    print(f"warning: reporter {name} failed: {type(exc).__name__}: {exc}",
                          file=self.stream or sys.stderr, flush=True)

    def started(self, plan: RunPlan) -> None:
        """Pass ``started`` on to each reporter."""
        self._each("started", plan)

    def stage_started(self, stage: StagePlan, initial_epoch: int, steps: int | None) -> None:
        """Pass ``stage_started`` on to each reporter."""
        self._each("stage_started", stage, initial_epoch, steps)

    def batch_ended(self, stage: StagePlan, batch: int, steps: int | None) -> None:
        """Pass ``batch_ended`` on to each reporter."""
        self._each("batch_ended", stage, batch, steps)

    def epoch_ended(self, progress: Progress) -> None:
        """Pass ``epoch_ended`` on to each reporter."""
        self._each("epoch_ended", progress)

    def stage_ended(self, result: StageResult) -> None:
        """Pass ``stage_ended`` on to each reporter."""
        self._each("stage_ended", result)

    def message(self, text: str) -> None:
        """Pass ``message`` on to each reporter."""
        self._each("message", text)

    def completed(self, result: TrainResult) -> None:
        """Pass ``completed`` on to each reporter."""
        self._each("completed", result)

    def failed(self, reason: str) -> None:
        """Pass ``failed`` on to each reporter."""
        self._each("failed", reason)
