"""Checking a manifest document: structure, types, semantic rules and warnings."""

from __future__ import annotations

from typing import Any, get_args

from pydantic import BaseModel, ValidationError

from .errors import Problem, problems_from
from .job import API_VERSION, KIND, FineTuneJob
from .uris import scheme_of


def _models_in(annotation: Any) -> list[type[BaseModel]]:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return [annotation]
    return [m for arg in get_args(annotation) for m in _models_in(arg)]


def fields_at(loc: tuple[Any, ...]) -> list[str]:
    """The wire names of the fields of the model found at ``loc`` (for 'did you mean' hints)."""
    models: list[type[BaseModel]] = [FineTuneJob]
    for part in loc:
        if isinstance(part, int):
            continue
        nxt: list[type[BaseModel]] = []
        for model in models:
            for name, field in model.model_fields.items():
                if part in (name, field.alias):
                    nxt.extend(_models_in(field.annotation))
        models = nxt
    return sorted({f.alias or n for m in models for n, f in m.model_fields.items()})


def check_document(doc: Any) -> tuple[FineTuneJob | None, list[Problem]]:
    """Validate one parsed YAML/JSON document. Returns the job (None if invalid) and all problems."""
    if not isinstance(doc, dict):
        return None, [Problem("", f"a manifest must be a mapping (got {type(doc).__name__})")]
    head: list[Problem] = []
    if doc.get("apiVersion") != API_VERSION:
        head.append(Problem("apiVersion", f"must be {API_VERSION} (got {doc.get('apiVersion')!r})"))
    if doc.get("kind") != KIND:
        head.append(Problem("kind", f"must be {KIND} (got {doc.get('kind')!r})"))
    if head:
        return None, head
    try:
        job = FineTuneJob.model_validate(doc)
    except ValidationError as exc:
        return None, problems_from(exc, fields_at)
    return job, warnings_for(job)


def warnings_for(job: FineTuneJob) -> list[Problem]:
    """Things that are valid but probably not meant."""
    out: list[Problem] = []
    spec = job.spec
    frozen_lr: float | None = None
    for i, stage in enumerate(spec.stages):
        lr = stage.optimizer.learning_rate
        if stage.trainable.frozen:
            frozen_lr = lr if frozen_lr is None else max(frozen_lr, lr)
        elif frozen_lr is not None and lr >= frozen_lr:
            out.append(Problem(
                f"spec.stages[{i}].optimizer.learningRate",
                f"fine-tuning stage {stage.name!r} has a learning rate ({lr:g}) not lower than the head "
                f"stage's ({frozen_lr:g}); a high rate can destroy the pretrained features",
                "warning"))
    if spec.base_model.application and spec.base_model.weights == "none" and any(
            s.trainable.frozen for s in spec.stages):
        out.append(Problem(
            "spec.baseModel.weights",
            "weights 'none' with a frozen stage trains a head on random features", "warning"))
    if scheme_of(spec.output.uri) in ("file", "memory") and not spec.output.uri.startswith("file://"):
        out.append(Problem(
            "spec.output.uri",
            "a local path works for `headstart run` only; in a cluster use pvc://, s3:// or gs://",
            "warning"))
    return out
