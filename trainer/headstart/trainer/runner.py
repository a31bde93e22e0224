"""Runs a FineTuneJob: ``run_job`` is the public entry.

A run is three steps, each a method of ``Run``:

1. ``prepare``: check the spec with Keras (pre-flight), configure the runtime, build the base, load the
   data, assemble the model, and load the checkpoint of an interrupted run of the same job and spec;
2. ``train``: each stage in order (training.StageTrainer), skipping those a checkpoint says are done;
3. ``publish``: evaluate, then write the model, labels, metrics, model card and manifest (last).

A complete model of the same job and spec already at the output ends the run at once (idempotent: a
restarted pod, a second local run).
"""

from __future__ import annotations

import json
import os
import tempfile
import time
from collections.abc import Callable

from headstart.api import FineTuneJob, storage
from headstart.api.digests import spec_sha256
from headstart.api.output_manifest import Owner

from . import data as data_mod
from . import features, modelcard, outputs, plots, preflight, runtime, stages
from .base import build_base
from .checkpoints import Checkpoints, State
from .errors import SpecError, TrainerError
from .head import assemble
from .reporting import Fanout, ModelInfo, Reporter, RunPlan, StagePlan, StageResult, TrainResult
from .training import Prepared, StageTrainer


def run_job(job: FineTuneJob, output: str | None = None, reporter: Reporter | None = None,
            resolve_from_job: Callable[[str], str] | None = None) -> TrainResult:
    """Train ``job`` and write its model to ``output`` (default: spec.output.uri).

    Resumes from the checkpoint of an interrupted run of the same job and spec at the same output.
    ``resolve_from_job`` maps a job name to its output URI (for baseModel.fromJob). Raises a
    TrainerError subclass, with a one-line message, for anything wrong with the spec, data or storage.
    The reporter's exceptions do not stop the training (see reporting.Fanout).

    Args:
        job: The FineTuneJob to train.
        output: Where to write the model (default: spec.output.uri).
        reporter: What receives the run's progress (default: a Reporter that does nothing).
        resolve_from_job: Maps a job name to its output URI (for baseModel.fromJob).

    Returns:
        The result: the stages, the final metrics and the model written.

    Raises:
        TrainerError: Anything wrong with the spec, the data or storage (a subclass, one-line message); the
            reporter's ``failed`` gets the message first.
    """
    guarded = Fanout(reporter or Reporter())
    try:
        return Run(job, output or job.spec.output.uri, guarded, resolve_from_job).run()
    except TrainerError as exc:
        guarded.failed(str(exc))
        raise


class Run:
    """One run of a job: prepare -> train each stage -> publish."""

    def __init__(self, job: FineTuneJob, output: str, reporter: Reporter,
                 resolve_from_job: Callable[[str], str] | None):
        self.job = job
        self.spec = job.spec
        self.output = output
        self.reporter = reporter
        self.resolve_from_job = resolve_from_job
        self.digest = spec_sha256(job, self._upstream_sha256())
        self.owner = Owner.of(job)

    def _upstream_sha256(self) -> str | None:
        upstream = self.spec.base_model.from_job
        if upstream is None or self.resolve_from_job is None:
            return None
        found = outputs.existing(self.resolve_from_job(upstream))
        return found.sha256 if found is not None else None  # missing: build_base says so

    def run(self) -> TrainResult:
        """The whole run: check the output location, then prepare, train and publish (or end at once when done).

        A complete model of this job and spec already at the output, without spec.output.overwrite, is not trained
        again: the result says so (``already_complete``).

        Returns:
            The result, also passed to the reporter's ``completed``.

        Raises:
            OutputError: The output cannot be written (OutputUnwritableError when it never will be), or holds
                another job's complete model and overwriting is not allowed (OutputConflictError).
            TrainerError: Anything else wrong with the spec, the base model, the data or storage.
        """
        started = time.monotonic()
        outputs.probe_writable(self.output)  # before any data is read: a location it may not write fails now
        found = outputs.check_location(self.output, self.owner, self.spec.output.overwrite)
        if found is not None and not outputs.owned_by(found, self.owner):  # overwrite allowed: say so
            self.reporter.message(f"overwriting the model of {Owner.recorded(found.manifest)} at {self.output} "
                                  "(spec.output.overwrite)")
        complete = found is not None and outputs.owned_by(found, self.owner) \
            and found.manifest.get("spec_sha256") == self.digest
        if complete and not self.spec.output.overwrite:
            return self._already_complete(found)
        preflight.check(self.spec)
        settings = runtime.configure(self.spec.runtime, self.spec.seed)
        with tempfile.TemporaryDirectory(prefix="headstart-") as workdir, settings.distribution.scope():
            prepared = self.prepare(workdir, retrain=complete)
            if settings.replicas > 1:
                batch = settings.distribution.global_batch(self.spec.dataset.batch_size)
                self.reporter.message(f"{settings.replicas} replicas (MirroredStrategy over "
                                      f"{', '.join(settings.distribution.devices)}): global batch {batch}")
            trainer = StageTrainer(self.spec, prepared, settings, self.reporter, workdir, self.output)
            try:
                self.train(trainer)
            except BaseException:
                prepared.checkpoints.close(quiet=True)  # an interrupted run still leaves its last checkpoint
                raise
            prepared.checkpoints.flush()
            model_info, metrics = self.publish(trainer, settings, workdir)
            prepared.checkpoints.finish(prepared.state)
        state, data = prepared.state, prepared.data
        result = TrainResult(self.job.name, self.output, list(state.stages), metrics, model_info,
                             len(data.skipped), time.monotonic() - started, prepared.resume_at is not None)
        self.reporter.completed(result)
        return result

    def prepare(self, workdir: str, retrain: bool) -> Prepared:
        """Base, data, model and checkpoint state; ``retrain``: a complete model is being overwritten, so
        an old checkpoint is not resumed."""
        base = build_base(self.spec.base_model, workdir, self.resolve_from_job)
        if not base.self_contained and "keras" in self.spec.output.formats:
            raise SpecError("output.formats: a model built on a plain SavedModel cannot be saved as keras "
                            "(it would reference files outside it); use savedmodel or tflite")
        for stage in self.spec.stages:
            stages.check_stage(stage, base.model)
        data = data_mod.load(self.spec.dataset, base.image_size, self.spec.seed, workdir)
        swept = tuple(d for stage in self.spec.stages if stage.sweep is not None and stage.sweep.dropouts
                      for d in stage.sweep.dropouts)
        model = assemble(base, self.spec.head, len(data.class_names), name=self.job.name.replace("-", "_"),
                         swept_dropouts=swept)
        augment = data_mod.augmentation(self.spec.augmentation, self.spec.seed)
        checkpoints = Checkpoints(self.output, self.owner, self.digest)
        state = None if retrain else checkpoints.load(self.spec.output.overwrite, self.reporter.message)
        outputs.invalidate(self.output)
        resume_at = None
        if state is None:
            checkpoints.clear()
            storage.remove(storage.join(self.output, "logs"))
            state = State(job=self.job.name, spec_sha256=self.digest, owner=self.owner.to_dict())
        else:
            checkpoints.restore_weights(state, model.model, model.head)
            resume_at = (len(state.stages), state.current.epochs_done if state.current else 0)
        plans = [StagePlan(stage.name, index, stage.epochs, stage.train_base, features.applies(stage, augment))
                 for index, stage in enumerate(self.spec.stages)]
        self.reporter.started(RunPlan(self.job.name, self.output, plans, data.class_names, dict(data.counts),
                                      len(data.skipped), resume_at, tuple(state.stages)))
        return Prepared(base, data, model, augment, checkpoints, state, plans, resume_at)

    def train(self, trainer: StageTrainer) -> None:
        """Train each stage in order, skipping those the checkpoint state says are done.

        Args:
            trainer: The stage trainer, holding the prepared run.
        """
        state = trainer.prepared.state
        for plan, stage in zip(trainer.prepared.plans, self.spec.stages):
            if plan.index >= len(state.stages):  # not completed before a restart
                trainer.train(plan, stage)

    def publish(self, trainer: StageTrainer, settings: runtime.Runtime, workdir: str) \
            -> tuple[ModelInfo, dict[str, float]]:
        """Evaluate, then write every artifact and the manifest last."""
        metrics = trainer.evaluate()
        prepared, formats = trainer.prepared, list(self.spec.output.formats)
        state, data = prepared.state, prepared.data
        staging = os.path.join(workdir, "out")
        self.reporter.message(f"writing {', '.join(formats)} to {self.output}")
        artifacts = outputs.stage_model(prepared.model.model, formats, staging, data.class_names,
                                        prepared.base.image_size)
        artifacts["labels.txt"] = outputs.write_text(staging, "labels.txt", "\n".join(data.class_names) + "\n")
        report = {
            "job": self.job.name,
            "stages": [{k: v for k, v in s.to_dict().items() if k != "history"}
                       | {"epochs_history": _per_epoch(s.history)} for s in state.stages],
            "final": metrics,
            "examples": data.counts,
            "skipped_files": len(data.skipped),
            "class_names": data.class_names,
            "runtime": {"gpus": settings.gpus, "replicas": settings.replicas,
                        "mixed_precision": settings.mixed_precision, "xla": settings.xla,
                        "deterministic": settings.deterministic, "feature_dtype": settings.feature_dtype},
        }
        artifacts["metrics.json"] = outputs.write_text(staging, "metrics.json", json.dumps(report, indent=1))
        pictures = plots.write_all(staging, state.stages, trainer.predictions(), data.class_names)
        artifacts.update({name: path for name, (path, _) in pictures.items()})
        card = modelcard.ModelCard(
            job_name=self.job.name, base=prepared.base.card, image_size=prepared.base.image_size,
            dataset=data.card, class_names=data.class_names, counts=data.counts, skipped=len(data.skipped),
            stages=state.stages, stage_specs=list(self.spec.stages), metrics=metrics, seed=self.spec.seed,
            runtime=settings, formats=formats,
            pictures={name: caption for name, (_, caption) in pictures.items()})
        artifacts["README.md"] = outputs.write_text(staging, "README.md", modelcard.render(card))
        trainer.upload_logs()
        logs = [f"logs/{p}" for p in storage.list_files(storage.join(self.output, "logs"))]
        info = outputs.publish(self.output, artifacts, owner=self.owner, spec_sha256=self.digest,
                               formats=formats, class_names=data.class_names, extra_uris=logs,
                               pictures=list(pictures))
        return info, metrics

    def _already_complete(self, found: outputs.Existing) -> TrainResult:
        report: dict = {}
        try:
            report = json.loads(storage.read_text(storage.join(self.output, "metrics.json")))
        except (OSError, ValueError):
            pass
        results = [StageResult(**{k: v for k, v in s.items() if k != "epochs_history"})
                   for s in report.get("stages", [])]
        info = ModelInfo(self.output, found.sha256, list(found.manifest.get("formats", [])),
                         list(found.manifest.get("class_names", [])), list(found.manifest.get("pictures", [])))
        result = TrainResult(self.job.name, self.output, results, dict(report.get("final", {})), info,
                             int(report.get("skipped_files", 0)), 0.0, False, already_complete=True)
        self.reporter.completed(result)
        return result


def _per_epoch(history: dict[str, list[float]]) -> list[dict[str, float]]:
    epochs = max((len(values) for values in history.values()), default=0)
    return [{"epoch": i + 1, **{k: v[i] for k, v in history.items() if i < len(v)}} for i in range(epochs)]
