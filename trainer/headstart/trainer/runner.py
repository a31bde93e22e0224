"""Runs a FineTuneJob: base, data, stages, checkpoints, outputs. ``run_job`` is the public entry."""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
import time
from collections.abc import Callable
from typing import Any

from headstart.api import FineTuneJob, StageSpec

from . import data as data_mod
from . import features, modelcard, outputs, runtime, stages, storage
from .base import build_base
from .checkpoints import Checkpoints, StageState, State
from .errors import SpecError, TrainerError
from .head import assemble
from .reporting import Guarded, ModelInfo, Progress, Reporter, RunPlan, StagePlan, StageResult, TrainResult

TRAINING_FIELDS = {"base_model", "head", "dataset", "augmentation", "stages", "seed"}


def spec_sha256(job: FineTuneJob, upstream_sha256: str | None = None) -> str:
    """Digest of what decides the training (not where it runs nor where it writes). For a fromJob base,
    ``upstream_sha256`` (that job's manifest digest) stands for the model the name points to, so a
    re-trained upstream model is not taken for the one this job's output or checkpoints were built on."""
    spec: dict = job.spec.model_dump(mode="json", include=TRAINING_FIELDS)
    if upstream_sha256 is not None:
        spec["from_job_manifest_sha256"] = upstream_sha256
    return hashlib.sha256(json.dumps(spec, sort_keys=True).encode()).hexdigest()


def run_job(job: FineTuneJob, output: str | None = None, reporter: Reporter | None = None,
            resolve_from_job: Callable[[str], str] | None = None) -> TrainResult:
    """Train ``job`` and write its model to ``output`` (default: spec.output.uri).

    Resumes from the checkpoint of an interrupted run of the same job and spec at the same output.
    ``resolve_from_job`` maps a job name to its output URI (for baseModel.fromJob). Raises a
    TrainerError subclass, with a one-line message, for anything wrong with the spec, data or storage.
    The reporter's exceptions do not stop the training (see reporting.Guarded).
    """
    reporter = Guarded(reporter or Reporter())
    try:
        return _Run(job, output or job.spec.output.uri, reporter, resolve_from_job).run()
    except TrainerError as exc:
        reporter.failed(str(exc))
        raise


class _Run:
    def __init__(self, job: FineTuneJob, output: str, reporter: Reporter,
                 resolve_from_job: Callable[[str], str] | None):
        self.job, self.spec, self.output, self.reporter = job, job.spec, output, reporter
        self.resolve_from_job = resolve_from_job
        upstream = None
        if job.spec.base_model.from_job and resolve_from_job is not None:
            found = outputs.existing(resolve_from_job(job.spec.base_model.from_job))
            upstream = found.sha256 if found is not None else None  # missing: build_base says so
        self.digest = spec_sha256(job, upstream)
        self.cached_features: dict[str, tuple[Any, Any]] | None = None
        self.warned_tensorboard = False

    def run(self) -> TrainResult:
        start = time.monotonic()
        found = outputs.check_location(self.output, self.job.name, self.spec.output.overwrite)
        same = found is not None and found.manifest.get("job") == self.job.name \
            and found.manifest.get("spec_sha256") == self.digest
        if same and not self.spec.output.overwrite:
            return self._already_complete(found)  # idempotent: a restarted pod, a second local run
        self._check_spec()
        self.rt = runtime.configure(self.spec.runtime, self.spec.seed)
        with tempfile.TemporaryDirectory(prefix="headstart-") as workdir:
            self.workdir = workdir
            base = build_base(self.spec.base_model, workdir, self.resolve_from_job)
            if not base.self_contained and "keras" in self.spec.output.formats:
                raise SpecError("output.formats: a model built on a plain SavedModel cannot be saved as keras "
                                "(it would reference files outside it); use savedmodel or tflite")
            for stage in self.spec.stages:
                stages.check_stage(stage, base.model)
            data = data_mod.load(self.spec.dataset, base.image_size, self.spec.seed, workdir)
            asm = assemble(base, self.spec.head, len(data.class_names), name=self.job.name.replace("-", "_"))
            self.augment = data_mod.augmentation(self.spec.augmentation, self.spec.seed)
            ckpt = Checkpoints(self.output, self.job.name, self.digest)
            state = None if same else ckpt.load()  # overwrite of a complete model: train afresh
            resumed = state is not None
            outputs.invalidate(self.output)
            if state is None:
                ckpt.clear()
                storage.remove(storage.join(self.output, "logs"))
                state = State(job=self.job.name, spec_sha256=self.digest)
            else:
                ckpt.restore_weights(state, asm.model, asm.head)
            plans = [StagePlan(s.name, i, s.epochs, s.train_base, features.applies(s, self.augment))
                     for i, s in enumerate(self.spec.stages)]
            resume_at = None
            if resumed:
                resume_at = (len(state.stages), state.current.epochs_done if state.current else 0)
            self.reporter.started(RunPlan(self.job.name, self.output, plans, data.class_names,
                                          dict(data.counts), len(data.skipped), resume_at))
            try:
                for plan, stage in zip(plans, self.spec.stages):
                    if plan.index < len(state.stages):
                        continue
                    self._stage(plan, stage, state, ckpt, asm, data)
            except BaseException:
                ckpt.close(quiet=True)  # an interrupted run still leaves its last checkpoint whole
                raise
            ckpt.flush()
            metrics = self._evaluate(asm.model, data)
            model_info = self._write(asm.model, base, data, state, metrics)
            ckpt.finish(state)
        result = TrainResult(self.job.name, self.output, list(state.stages), metrics, model_info,
                             len(data.skipped), time.monotonic() - start, resumed)
        self.reporter.completed(result)
        return result

    def _check_spec(self) -> None:
        has_val = self.spec.dataset.splits.validation is not None
        for stage in self.spec.stages:
            es = stage.early_stopping
            if es is not None and es.monitor.startswith("val_") and not has_val:
                raise SpecError(f"stage {stage.name!r}: earlyStopping monitors {es.monitor} but the dataset "
                                "has no validation split")

    def _stage(self, plan: StagePlan, stage: StageSpec, state: State, ckpt: Checkpoints, asm: Any,
               data: data_mod.Data) -> None:
        stages.set_trainable(asm.base, stage.trainable)
        model = asm.head if plan.feature_cache else asm.model
        stages.compile_for_stage(model, stage, self.rt.xla)
        if state.current is not None and state.current.index == plan.index:
            cur = state.current
            ckpt.restore_optimizer(state, model.optimizer, model.trainable_variables)
        else:
            cur = state.current = StageState(index=plan.index)
        prior = cur.duration_seconds
        best_weights = ckpt.best_weights(state)
        stage_cbs = stages.callbacks(stage, cur.early_stopping, best_weights)
        es = next((cb for cb in stage_cbs if hasattr(cb, "resume_from")), None)
        started = time.monotonic()
        bs, seed, shuffle = self.spec.dataset.batch_size, self.spec.seed, self.spec.dataset.shuffle_buffer
        steps = -(-(data.counts.get("train") or 0) // bs) or None
        self.reporter.stage_started(plan, cur.epochs_done, steps)

        def on_epoch(epoch: int, logs: dict) -> None:
            metrics = {k: float(v) for k, v in logs.items()}
            for k, v in metrics.items():
                cur.history.setdefault(k, []).append(v)
            cur.epochs_done = epoch + 1
            cur.duration_seconds = prior + time.monotonic() - started
            cur.stopped = bool(model.stop_training)
            improved = None
            if es is not None:
                cur.early_stopping = es.state()
                if es.restore_best_weights and es.best_epoch == epoch and es.best_weights is not None:
                    improved = es.best_weights
            ckpt.save_epoch(state, asm.model, model.optimizer, improved,
                            head=asm.head if plan.feature_cache else None)
            self.reporter.epoch_ended(Progress(stage.name, plan.index, epoch + 1, stage.epochs, metrics))

        if cur.epochs_done < stage.epochs and not cur.stopped:
            if plan.feature_cache:
                if state.weights is None:
                    ckpt.save_start(state, asm.model, plan.index)
                train_ds, val_ds = self._feature_data(asm, data, bs, shuffle, seed)
            else:
                self.cached_features = None  # the base trains (or sees augmented images)
                train_ds = data_mod.batches(data.splits["train"], bs, shuffle_buffer=shuffle, seed=seed,
                                            augment=self.augment)
                val = data.splits.get("validation")
                val_ds = data_mod.batches(val, bs) if val is not None else None
            from .callbacks import BatchEnd, EpochEnd, tensorboard

            cbs = [*stage_cbs, BatchEnd(lambda b: self.reporter.batch_ended(plan, b, steps))]
            tb = tensorboard(os.path.join(self.workdir, "logs", stage.name))
            if tb is not None:
                cbs.append(tb)
            elif not self.warned_tensorboard:
                self.warned_tensorboard = True
                self.reporter.message("no TensorBoard logs: the tensorboard package is not installed")
            cbs.append(EpochEnd(on_epoch))
            model.fit(train_ds, validation_data=val_ds, epochs=stage.epochs, initial_epoch=cur.epochs_done,
                      callbacks=cbs, verbose=0, shuffle=False)
        elif es is not None and es.restore_best_weights and best_weights is not None:
            model.set_weights(best_weights)  # stopped early just before a restart
        if not stage.trainable.frozen:
            self.cached_features = None
        result = StageResult(stage.name, plan.index, stage.epochs, cur.epochs_done,
                             stages.history_best(cur.history), cur.duration_seconds,
                             stopped_early=cur.epochs_done < stage.epochs, feature_cache=plan.feature_cache,
                             history=cur.history)
        ckpt.save_stage_end(state, asm.model, result)
        self._upload_logs()
        self.reporter.stage_ended(result)

    def _feature_data(self, asm: Any, data: data_mod.Data, bs: int, shuffle: int, seed: int) -> tuple:
        if self.cached_features is None:
            self.reporter.message("computing the frozen base's features once")
            extract = features.extractor(asm.features, self.rt.xla)
            self.cached_features = {
                split: features.extract(extract, asm.features, data_mod.batches(ds, bs))
                for split, ds in data.splits.items() if split != "test"}
        train = features.dataset(*self.cached_features["train"], bs, shuffle_buffer=shuffle, seed=seed)
        val = self.cached_features.get("validation")
        return train, (features.dataset(*val, bs) if val is not None else None)

    def _evaluate(self, model: Any, data: data_mod.Data) -> dict[str, float]:
        last = self.spec.stages[-1]
        model.compile(optimizer=stages.make_optimizer(last.optimizer), loss="sparse_categorical_crossentropy",
                      metrics=["accuracy"], jit_compile=self.rt.xla)
        metrics: dict[str, float] = {}
        for split, prefix in (("validation", "val_"), ("test", "test_")):
            ds = data.splits.get(split)
            if ds is None:
                continue
            values = model.evaluate(data_mod.batches(ds, self.spec.dataset.batch_size), verbose=0,
                                    return_dict=True)
            metrics.update({f"{prefix}{k}": float(v) for k, v in values.items()})
        return metrics

    def _upload_logs(self) -> None:
        local = os.path.join(self.workdir, "logs")
        if os.path.isdir(local):
            storage.put_tree(local, storage.join(self.output, "logs"))

    def _write(self, model: Any, base: Any, data: data_mod.Data, state: State,
               metrics: dict[str, float]) -> ModelInfo:
        formats = list(self.spec.output.formats)
        staging = os.path.join(self.workdir, "out")
        self.reporter.message(f"writing {', '.join(formats)} to {self.output}")
        artifacts = outputs.stage_model(model, formats, staging)
        artifacts["labels.txt"] = outputs.write_text(staging, "labels.txt", "\n".join(data.class_names) + "\n")
        report = {
            "job": self.job.name,
            "stages": [{k: v for k, v in s.to_dict().items() if k != "history"}
                       | {"epochs_history": _per_epoch(s.history)} for s in state.stages],
            "final": metrics,
            "examples": data.counts,
            "skipped_files": len(data.skipped),
            "class_names": data.class_names,
        }
        artifacts["metrics.json"] = outputs.write_text(staging, "metrics.json", json.dumps(report, indent=1))
        card = modelcard.render(
            job_name=self.job.name, base=base.card, image_size=base.image_size, dataset=data.card,
            class_names=data.class_names, counts=data.counts, skipped=len(data.skipped), stages=state.stages,
            stage_specs=[s.model_dump(mode="json") for s in self.spec.stages], metrics=metrics,
            seed=self.spec.seed, formats=formats,
            runtime={"mixed precision": self.rt.mixed_precision, "XLA": self.rt.xla, "GPUs": self.rt.gpus,
                     "deterministic": self.rt.deterministic})
        artifacts["README.md"] = outputs.write_text(staging, "README.md", card)
        self._upload_logs()
        logs = [f"logs/{p}" for p in storage.list_files(storage.join(self.output, "logs"))]
        return outputs.publish(self.output, artifacts, job_name=self.job.name, spec_sha256=self.digest,
                               formats=formats, class_names=data.class_names, extra_uris=logs)

    def _already_complete(self, found: outputs.Existing) -> TrainResult:
        report: dict = {}
        try:
            report = json.loads(storage.read_text(storage.join(self.output, "metrics.json")))
        except (OSError, ValueError):
            pass
        results = [StageResult(**{k: v for k, v in s.items() if k != "epochs_history"})
                   for s in report.get("stages", [])]
        info = ModelInfo(self.output, found.sha256, list(found.manifest.get("formats", [])),
                         list(found.manifest.get("class_names", [])))
        result = TrainResult(self.job.name, self.output, results, dict(report.get("final", {})), info,
                             int(report.get("skipped_files", 0)), 0.0, False, already_complete=True)
        self.reporter.completed(result)
        return result


def _per_epoch(history: dict[str, list[float]]) -> list[dict[str, float]]:
    n = max((len(v) for v in history.values()), default=0)
    return [{"epoch": i + 1, **{k: v[i] for k, v in history.items() if i < len(v)}} for i in range(n)]
