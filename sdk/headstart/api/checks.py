"""Checking a manifest document: structure, types, semantic rules and warnings."""

from __future__ import annotations

import datetime as dt
import json
import math
from typing import Any, Literal, get_args

from pydantic import BaseModel, ValidationError

from .errors import Problem, format_path, problems_from
from .job import API_VERSION, KIND, FineTuneJob

#: Where a manifest is meant to run: a cluster (as the API server takes it) or this machine (`headstart run`,
#: --local: a local output too).
Target = Literal["cluster", "local"]


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


def _not_json(value: Any, path: tuple[Any, ...] = ()) -> list[Problem]:
    """Values a manifest cannot carry to the API server (it speaks JSON): NaN, infinities, bytes, sets."""
    if isinstance(value, dict):
        return [p for key, item in value.items() for p in _not_json(item, (*path, str(key)))]
    if isinstance(value, list):
        return [p for index, item in enumerate(value) for p in _not_json(item, (*path, index))]
    if isinstance(value, float) and not math.isfinite(value):
        return [Problem(format_path(path), f"must be a finite number (got {value!r})")]
    if value is None or isinstance(value, (str, int, float, dt.date)):  # a date (from Python): its ISO string
        return []
    return [Problem(format_path(path), f"a {type(value).__name__} value has no JSON form (got {value!r:.40})")]


def _as_json(value: Any) -> Any:
    if isinstance(value, (dt.date, dt.datetime)):
        return value.isoformat()
    raise TypeError(type(value).__name__)


def _whole_numbers(value: Any) -> Any:
    """Whole floats as integers: the API server takes 1.0 for an integer field, as JSON has one number type
    (a float field takes them either way)."""
    if isinstance(value, dict):
        return {key: _whole_numbers(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_whole_numbers(item) for item in value]
    if isinstance(value, float) and value.is_integer() and abs(value) < 2**53:
        return int(value)
    return value


def check_document(doc: Any, target: Target = "cluster") -> tuple[FineTuneJob | None, list[Problem]]:
    """Validate one parsed YAML/JSON document as the API server reads it: every value of the JSON type its
    field has (strict: no string read as a number, no true read as 1), then the models' rules. ``target``
    "local" takes what `headstart run` takes too (a local output). Returns the job (None if invalid) and
    all problems.

    Args:
        doc: One parsed document (a mapping, as from ``yaml.safe_load``).
        target: "cluster" (as the API server checks it) or "local" (a local output path too).

    Returns:
        The job (None when a problem is an error) and the problems: the errors, else the job's warnings.
    """
    if not isinstance(doc, dict):
        return None, [Problem("", f"a manifest must be a mapping (got {type(doc).__name__})")]
    head: list[Problem] = []
    if doc.get("apiVersion") != API_VERSION:
        head.append(Problem("apiVersion", f"must be {API_VERSION} (got {doc.get('apiVersion')!r})"))
    if doc.get("kind") != KIND:
        head.append(Problem("kind", f"must be {KIND} (got {doc.get('kind')!r})"))
    if head:
        return None, head
    unsendable = _not_json(doc)
    if unsendable:
        return None, unsendable
    try:  # through JSON, strictly: JSON's types are the CRD's; timestamps (metadata, status) are its strings
        job = FineTuneJob.model_validate_json(json.dumps(_whole_numbers(doc), default=_as_json), strict=True,
                                              context={"target": target})
    except ValidationError as exc:
        return None, problems_from(exc, fields_at)
    return job, warnings_for(job)


def warnings_for(job: FineTuneJob) -> list[Problem]:
    """Things that are valid but probably not meant.

    Args:
        job: A valid job.

    Returns:
        Warning problems: a fine-tuning stage whose learning rate is not lower than a frozen stage's before
        it, and a frozen stage on a base application with weights 'none'.
    """
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
    return out
