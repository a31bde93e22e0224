"""Keras callbacks of the trainer (this module imports Keras; import it lazily)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import keras

from . import termination
from .checkpoints import Checkpoints, StageState, State
from .data import EpochOrder
from .errors import TerminatedError
from .reporting import Progress, Reporter, StagePlan


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """keras EarlyStopping whose state (wait, best, best epoch and weights) survives a restart: give the
    ``resume_state`` that ``state()`` returned and the best weights saved with it."""

    def __init__(self, *, resume_state: dict | None = None, resume_weights: list | None = None, **kwargs: Any):
        super().__init__(**kwargs)
        self.resume_state = resume_state
        self.resume_weights = resume_weights

    def on_train_begin(self, logs: Any = None) -> None:
        super().on_train_begin(logs)
        if self.resume_state:
            self.wait = int(self.resume_state["wait"])
            self.best = self.resume_state["best"]
            self.best_epoch = int(self.resume_state["best_epoch"])
            self.best_weights = self.resume_weights

    def state(self) -> dict:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch)}

    def improved_at(self, epoch: int) -> list | None:
        """The weights to keep as the best, when ``epoch`` was the best so far and they are restored."""
        if self.restore_best_weights and self.best_epoch == epoch and self.best_weights is not None:
            return self.best_weights
        return None


class EpochCheckpoint(keras.callbacks.Callback):
    """After every epoch, in this order: the stage's state records the epoch, the checkpoint is written (in
    the background), the progress is reported. Put it last, after early stopping has seen the epoch.

    ``full_model`` is the whole model; ``head`` is given for a feature-cache stage, whose base does not
    change, so only the head is checkpointed. The optimizer is the trained model's own."""

    def __init__(self, *, plan: StagePlan, state: State, stage_state: StageState, checkpoints: Checkpoints,
                 full_model: Any, head: Any | None, early_stopping: ResumableEarlyStopping | None,
                 reporter: Reporter):
        super().__init__()
        self.plan = plan
        self.state = state
        self.stage_state = stage_state
        self.checkpoints = checkpoints
        self.full_model = full_model
        self.head = head
        self.early_stopping = early_stopping
        self.reporter = reporter
        self.seconds_before = stage_state.duration_seconds
        self.started = time.monotonic()  # the stage's time includes computing its cached features

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        metrics = {name: float(value) for name, value in (logs or {}).items()}
        # the rate the optimizer trained with (Keras logs it only under a LearningRateScheduler)
        metrics.setdefault("learning_rate", float(keras.ops.convert_to_numpy(self.model.optimizer.learning_rate)))
        stage = self.stage_state
        for name, value in metrics.items():
            stage.history.setdefault(name, []).append(value)
        stage.epochs_done = epoch + 1
        stage.batches_done, stage.epoch_metrics = 0, None
        stage.duration_seconds = self.seconds_before + time.monotonic() - self.started
        stage.stopped = bool(self.model.stop_training)
        improved = None
        if self.early_stopping is not None:
            stage.early_stopping = self.early_stopping.state()
            improved = self.early_stopping.improved_at(epoch)
        self.checkpoints.save_epoch(self.state, self.full_model, self.model.optimizer, improved, head=self.head)
        self.reporter.epoch_ended(Progress(self.plan.name, self.plan.index, epoch + 1, self.plan.epochs, metrics))
        if termination.requested():  # during the epoch's last batch, its validation or its checkpoint
            self.stop(f"after epoch {epoch + 1}")

    def save_position(self, epoch: int, batches: int, metric_values: list) -> None:
        """Inside epoch ``epoch`` (from 0), after ``batches`` of its batches: checkpoint there, then stop."""
        stage = self.stage_state
        stage.batches_done, stage.epoch_metrics = batches, metric_values
        stage.duration_seconds = self.seconds_before + time.monotonic() - self.started
        self.checkpoints.save_epoch(self.state, self.full_model, self.model.optimizer, None, head=self.head)
        self.stop(f"in epoch {epoch + 1} after batch {batches}")

    def stop(self, where: str) -> None:
        """The checkpoint in storage, then TerminatedError (exit 143: the next run resumes from it)."""
        self.checkpoints.flush()
        raise TerminatedError(f"terminated (SIGTERM) in stage {self.plan.index + 1} {self.plan.name} {where}: "
                              "checkpointed there; the next run resumes from it")


class EpochPosition(keras.callbacks.Callback):
    """Where training is inside the epoch: tells the training pipeline which epoch a pass is (``order``,
    before Keras starts it), continues a resumed epoch's metrics from ``epoch_metrics`` (added after its
    first batch: the metric variables are sums and counts), and after each batch stops on SIGTERM through
    ``recorder`` (a checkpoint of the position). No stop after an epoch's last batch: the epoch ends first."""

    def __init__(self, order: EpochOrder, recorder: EpochCheckpoint, steps: int | None,
                 epoch_metrics: list | None):
        super().__init__()
        self.order = order
        self.recorder = recorder
        self.steps = steps
        self.pending_metrics = epoch_metrics
        self.epoch = 0
        self.offset = 0
        """Batches of this epoch trained before this run (a resumed epoch)."""

    def on_epoch_begin(self, epoch: int, logs: dict | None = None) -> None:
        self.epoch = self.order.epoch = epoch
        self.offset = self.order.skip(epoch)
        if not self.offset:
            self.pending_metrics = None

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        if self.pending_metrics is not None:
            variables, self.pending_metrics = self.model.metrics_variables, self.pending_metrics
            if len(variables) == len(self.pending_metrics):
                for variable, value in zip(variables, self.pending_metrics):
                    variable.assign_add(keras.ops.cast(value, variable.dtype))
            self.pending_metrics = None
        done = self.offset + batch + 1
        if termination.requested() and (self.steps is None or done < self.steps):
            values = [keras.ops.convert_to_numpy(v).tolist() for v in self.model.metrics_variables]
            self.recorder.save_position(self.epoch, done, values)


class BatchEnd(keras.callbacks.Callback):
    """Calls ``fn(batch)`` after every training batch (progress bars)."""

    def __init__(self, fn: Callable[[int], None]):
        super().__init__()
        self.fn = fn

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.fn(batch + 1)


def tensorboard(log_dir: str) -> Any | None:
    """A TensorBoard callback, or None when the tensorboard package is not installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return None
    return keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0)
