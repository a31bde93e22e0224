"""Training the stages of one run, one stage at a time.

A stage makes the base trainable as its trainBase says, compiles the model it trains (the head alone on
cached features for a frozen, unaugmented stage; the whole model otherwise) with the stage's optimizer,
picks up where a checkpoint left it, and fits. After every epoch the EpochCheckpoint callback records the
epoch, checkpoints and reports; at the end of the stage the stage boundary is checkpointed.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from typing import Any

from headstart.api import FineTuneJobSpec, StageSpec, storage

from . import data as data_mod
from . import features, stages
from .base import Base
from .checkpoints import Checkpoints, StageState, State
from .head import Assembled
from .reporting import Progress, Reporter, StagePlan, StageResult
from .runtime import Runtime


@dataclass
class Prepared:
    """Everything the stages train with, built once before the first stage."""

    base: Base
    data: data_mod.Data
    model: Assembled
    augment: Any | None
    """The augmentation layers, or None."""
    checkpoints: Checkpoints
    state: State
    """The checkpoint state: completed stages, the current one, the files."""
    plans: list[StagePlan]
    resume_at: tuple[int, int] | None
    """(stage index, epochs done in it) when resuming."""


class StageTrainer:
    """Trains a run's stages in order. Keeps what outlives a stage: the cached features (reused by a
    following frozen stage) and the last stage's optimizer (reused to evaluate)."""

    def __init__(self, spec: FineTuneJobSpec, prepared: Prepared, runtime: Runtime, reporter: Reporter,
                 workdir: str, output_uri: str):
        self.spec = spec
        self.prepared = prepared
        self.runtime = runtime
        self.reporter = reporter
        self.logs_dir = os.path.join(workdir, "logs")
        self.output_uri = output_uri
        self.cached_features: dict[str, tuple[Any, Any]] | None = None
        self.last_optimizer: Any | None = None
        self.reported_missing_tensorboard = False

    def train(self, plan: StagePlan, stage: StageSpec) -> StageResult:
        prepared, state, checkpoints = self.prepared, self.prepared.state, self.prepared.checkpoints
        assembled = prepared.model
        stages.set_trainable(assembled.base, stage.trainable)
        trained = assembled.head if plan.feature_cache else assembled.model
        # On cached features a step is a few microseconds of work: run an epoch's steps in one call.
        per_call = (self._steps_per_epoch() or 1) if plan.feature_cache else 1
        self.last_optimizer = stages.compile_for_stage(trained, stage, self.runtime.xla, steps_per_execution=per_call)
        if state.current is not None and state.current.index == plan.index:
            current = state.current
            checkpoints.restore_optimizer(state, trained.optimizer, trained.trainable_variables)
        else:
            current = state.current = StageState(index=plan.index)
        best_weights = checkpoints.best_weights(state)
        early_stopping = stages.early_stopping_callback(stage, current.early_stopping, best_weights)
        steps = self._steps_per_epoch()
        self.reporter.stage_started(plan, current.epochs_done, steps)
        candidates: list[dict] = []
        if stage.sweep is not None and not current.epochs_done:
            candidates = self._sweep(plan, stage, trained, steps)
        elif current.epochs_done < stage.epochs and not current.stopped:
            self._fit(plan, stage, trained, early_stopping, steps)
        elif early_stopping is not None and early_stopping.restore_best_weights and best_weights is not None:
            trained.set_weights(best_weights)  # stopped early just before a restart
        if not stage.trainable.frozen:
            self.cached_features = None  # the base changed
        result = StageResult(stage.name, plan.index, stage.epochs, current.epochs_done,
                             stages.history_best(current.history), current.duration_seconds,
                             stopped_early=current.epochs_done < stage.epochs, feature_cache=plan.feature_cache,
                             history=current.history, candidates=candidates)
        checkpoints.save_stage_end(state, assembled.model, result)
        self.upload_logs()
        self.reporter.stage_ended(result)
        return result

    def _fit(self, plan: StagePlan, stage: StageSpec, trained: Any, early_stopping: Any | None,
             steps: int | None) -> None:
        """Fit the stage's remaining epochs. A stage resumed inside an epoch first finishes that epoch in a fit
        of its own: Keras takes the length of every epoch of a fit from its first."""
        current = self.prepared.state.current
        assert current is not None
        recorder = self._epoch_checkpoint(plan, current, early_stopping)
        order = data_mod.EpochOrder(resume_epoch=current.epochs_done, resume_batches=current.batches_done)

        def callbacks() -> list[Any]:
            return self._callbacks(plan, stage, early_stopping, steps, recorder, order)

        if current.batches_done:
            self.reporter.message(f"resuming epoch {current.epochs_done + 1} of stage {plan.index + 1} after "
                                  f"batch {current.batches_done}" + (f" of {steps}" if steps else ""))
            left = steps - current.batches_done if steps else None
            self._fit_until(plan, trained, order, current.epochs_done + 1, left, callbacks())
            if early_stopping is not None:  # the next fit's on_train_begin starts from where this one ended
                early_stopping.resume_state = current.early_stopping
                early_stopping.resume_weights = early_stopping.best_weights
        if current.epochs_done < stage.epochs and not current.stopped:
            self._fit_until(plan, trained, order, stage.epochs, steps, callbacks())

    def _sweep(self, plan: StagePlan, stage: StageSpec, head: Any, steps: int | None) -> list[dict]:
        """Train every candidate of the stage's sweep on the cached features; the best's weights stay in the
        head and its history is the stage's. Returns the candidates (status.stages[].candidates)."""
        from .sweep import Sweep

        assert plan.feature_cache, "the API allows a sweep only where the feature cache applies"
        current = self.prepared.state.current
        assert current is not None
        began = time.monotonic()
        order = data_mod.EpochOrder(resume_epoch=0, resume_batches=0)

        def fit(candidate: StageSpec, callbacks: list[Any]) -> Any:
            train, validation = self._datasets(plan, order, steps)
            return head.fit(train, validation_data=validation, epochs=candidate.epochs, verbose=0, shuffle=False,
                            callbacks=callbacks)

        def evaluate() -> dict[str, float]:
            return head.evaluate(self._datasets(plan, order, steps)[1], verbose=0, return_dict=True)

        sweep = Sweep(stage, plan.index, head, self.spec.head.dropout, fit, evaluate, self.reporter.message)
        best = sweep.run()
        current.history, current.epochs_done = best.history, best.epochs_completed
        current.duration_seconds = time.monotonic() - began
        last = {name: values[-1] for name, values in best.history.items() if values}
        self.reporter.epoch_ended(Progress(plan.name, plan.index, best.epochs_completed, plan.epochs, last))
        return [outcome.to_dict() for outcome in sweep.outcomes]

    def _fit_until(self, plan: StagePlan, trained: Any, order: data_mod.EpochOrder, epochs: int,
                   batches: int | None, callbacks: list[Any]) -> None:
        """Fit from the stage's next epoch to ``epochs`` (its number, from 1), each of ``batches`` batches."""
        current = self.prepared.state.current
        assert current is not None
        train_data, validation_data = self._datasets(plan, order, batches)
        trained.fit(train_data, validation_data=validation_data, epochs=epochs, initial_epoch=current.epochs_done,
                    verbose=0, shuffle=False, callbacks=callbacks)

    def upload_logs(self) -> None:
        """Copy the TensorBoard logs written so far to the output."""
        if os.path.isdir(self.logs_dir):
            storage.put_tree(self.logs_dir, storage.join(self.output_uri, "logs"))

    @property
    def batch_size(self) -> int:
        """The global batch: dataset.batchSize per replica, split across the replicas."""
        return self.runtime.distribution.global_batch(self.spec.dataset.batch_size)

    def _steps_per_epoch(self) -> int | None:
        train_images = self.prepared.data.counts.get("train") or 0
        return -(-train_images // self.batch_size) or None

    def _epoch_checkpoint(self, plan: StagePlan, current: StageState, early_stopping: Any | None) -> Any:
        from .callbacks import EpochCheckpoint

        prepared = self.prepared
        if plan.feature_cache and prepared.state.weights is None:
            prepared.checkpoints.save_start(prepared.state, prepared.model.model, plan.index)
        return EpochCheckpoint(plan=plan, state=prepared.state, stage_state=current,
                               checkpoints=prepared.checkpoints, full_model=prepared.model.model,
                               head=prepared.model.head if plan.feature_cache else None,
                               early_stopping=early_stopping, reporter=self.reporter)

    def _callbacks(self, plan: StagePlan, stage: StageSpec, early_stopping: Any | None, steps: int | None,
                   recorder: Any, order: data_mod.EpochOrder) -> list[Any]:
        """The stage's callbacks; a stage on images also stops inside an epoch on SIGTERM (EpochPosition: one
        on cached features runs an epoch per call, it stops at the epoch's end, in ``recorder``)."""
        from .callbacks import BatchEnd, EpochPosition, tensorboard

        callbacks = [c for c in (stages.schedule_callback(stage), early_stopping) if c is not None]
        position = None if plan.feature_cache else \
            EpochPosition(order, recorder, steps, self.prepared.state.current.epoch_metrics)
        offset = (lambda: position.offset) if position is not None else (lambda: 0)
        callbacks.append(BatchEnd(lambda batch: self.reporter.batch_ended(plan, offset() + batch, steps)))
        board = tensorboard(os.path.join(self.logs_dir, stage.name))
        if board is not None:
            callbacks.append(board)
        elif not self.reported_missing_tensorboard:
            self.reported_missing_tensorboard = True
            self.reporter.message("no TensorBoard logs: the tensorboard package is not installed")
        if position is not None:
            callbacks.append(position)
        callbacks.append(recorder)  # last: it checkpoints what the others decided (early stopping)
        return callbacks

    def _datasets(self, plan: StagePlan, order: data_mod.EpochOrder, batches: int | None) \
            -> tuple[Any, Any | None]:
        """(train, validation) batches: of cached features for a feature-cache stage, else of images (each
        epoch's order seeded by the epoch, see ``order``; ``batches`` per epoch when known)."""
        dataset, data, batch = self.spec.dataset, self.prepared.data, self.batch_size
        if plan.feature_cache:
            cached = self._features()
            train = features.dataset(*cached["train"], batch, shuffle_buffer=dataset.shuffle_buffer,
                                     seed=self.spec.seed)
            validation = cached.get("validation")
            return train, (features.dataset(*validation, batch) if validation is not None else None)
        self.cached_features = None  # the base trains (or sees augmented images)
        train = data_mod.train_batches(data.splits["train"], batch, order, batches=batches,
                                       shuffle_buffer=dataset.shuffle_buffer, seed=self.spec.seed,
                                       augment=self.prepared.augment)
        validation = data.splits.get("validation")
        return train, (data_mod.batches(validation, batch) if validation is not None else None)

    def _features(self) -> dict[str, tuple[Any, Any]]:
        if self.cached_features is None:
            runtime = self.runtime
            self.reporter.message("computing the frozen base's features once"
                                  + (" (bfloat16)" if runtime.feature_dtype == "bfloat16" else ""))
            splits = {name: ds for name, ds in self.prepared.data.splits.items() if name != "test"}
            self.cached_features = features.compute(
                self.prepared.model.features, splits, lambda ds: data_mod.batches(ds, self.batch_size),
                cached=self.spec.dataset.cache, xla=runtime.xla, dtype=runtime.feature_dtype,
                strategy=runtime.distribution.strategy)
        return self.cached_features

    def evaluate(self) -> dict[str, float]:
        """val_* and test_* metrics of the whole model, compiled with the last stage's optimizer (no new
        one: evaluating does not train)."""
        model = self.prepared.model.model
        optimizer = self.last_optimizer or stages.make_optimizer(self.spec.stages[-1].optimizer)  # all resumed
        stages.compile_model(model, optimizer, self.runtime.xla)
        metrics: dict[str, float] = {}
        for split, prefix in (("validation", "val_"), ("test", "test_")):
            images = self.prepared.data.splits.get(split)
            if images is None:
                continue
            values = model.evaluate(data_mod.batches(images, self.batch_size), verbose=0, return_dict=True)
            metrics.update({f"{prefix}{name}": float(value) for name, value in values.items()})
        return metrics

    def predictions(self) -> tuple[str, Any, Any] | None:
        """(split, true labels, predicted labels) of the whole model on the test split, else validation;
        None without either."""
        import numpy as np

        for split in ("test", "validation"):
            images = self.prepared.data.splits.get(split)
            if images is None:
                continue
            batches = data_mod.batches(images, self.batch_size)
            labels = [y for _, y in batches.as_numpy_iterator()]
            if not labels:
                continue
            probabilities = self.prepared.model.model.predict(batches.map(lambda x, y: x), verbose=0)
            return split, np.concatenate(labels), np.argmax(probabilities, axis=-1)
        return None
