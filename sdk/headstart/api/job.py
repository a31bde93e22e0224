"""The FineTuneJob resource: spec, metadata, and the rules that span several fields."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import Field, model_validator

from ._base import ApiModel, cel
from .cluster import (
    EnvFromSource,
    EnvVar,
    OutputSpec,
    ResourcesSpec,
    RunPolicy,
    RuntimeSpec,
    SchedulingSpec,
)
from .data import AugmentationSpec, DatasetSpec
from .model import NAME_PATTERN, BaseModelSpec, HeadSpec
from .names import API_VERSION, GROUP, KIND, PLURAL, SHORT_NAMES, SINGULAR, VERSION
from .stages import StageSpec
from .status import FineTuneJobStatus

__all__ = ["API_VERSION", "GROUP", "KIND", "PLURAL", "SHORT_NAMES", "SINGULAR", "VERSION", "FineTuneJob",
           "FineTuneJobSpec", "ObjectMeta", "manifest"]



class ObjectMeta(ApiModel):
    """The parts of metav1.ObjectMeta a manifest carries, and (read back from a cluster) a few the API server
    sets; the rest is ignored."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    name: str = Field(min_length=1, max_length=253, pattern=NAME_PATTERN)
    namespace: str | None = Field(default=None, max_length=63, pattern=NAME_PATTERN)
    labels: dict[str, str] = Field(default_factory=dict)
    annotations: dict[str, str] = Field(default_factory=dict)
    uid: str | None = None
    """Set by the API server."""
    generation: int | None = None
    """Set by the API server: bumped by every change of the spec."""
    resource_version: str | None = None
    """Set by the API server."""
    creation_timestamp: datetime | None = None
    """Set by the API server."""


#: Secret references (env secretKeyRef and envFrom) a job may make: deploy/common/admission.yaml checks each one's
#: author's right to read it, and the API server lets one request spend that many authorization checks.
MAX_SECRET_REFERENCES = 16


class FineTuneJobSpec(ApiModel):
    """Desired state of a FineTuneJob: base model, head, data, the stage schedule and where it runs."""

    model_config = cel(("self.stages.all(s, self.stages.exists_one(t, t.name == s.name))",
                        "stages: stage names must be unique"),
                       ("(has(self.env) ? self.env.filter(e, has(e.secretKeyRef)).size() : 0)"
                        f" + (has(self.envFrom) ? self.envFrom.size() : 0) <= {MAX_SECRET_REFERENCES}",
                        f"env, envFrom: at most {MAX_SECRET_REFERENCES} Secret references (the admission guard checks "
                        "each against its author's rights)"))

    base_model: BaseModelSpec
    """The pretrained model to start from."""

    head: HeadSpec = Field(default_factory=HeadSpec)
    """The new top: pooling and layers."""

    dataset: DatasetSpec
    """The training data."""

    augmentation: AugmentationSpec = Field(default_factory=AugmentationSpec)
    """Random augmentation of training images."""

    stages: list[StageSpec] = Field(min_length=1, max_length=20)
    """The schedule, run in order: e.g. train the head on a frozen base, then fine-tune the base."""

    output: OutputSpec
    """Where the trained model goes."""

    seed: int = Field(default=42, ge=0, le=2**31 - 1)
    """Seed for shuffling, splitting, augmentation and initialisation. Default: 42."""

    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    """Mixed precision, XLA, determinism."""

    resources: ResourcesSpec = Field(default_factory=ResourcesSpec)
    """GPUs, CPU and memory of the training pod."""

    image: str | None = Field(default=None, max_length=1024)
    """Trainer container image. Default: the operator's."""

    run_policy: RunPolicy = Field(default_factory=RunPolicy)
    """Retries, deadlines, clean-up and suspension."""

    scheduling: SchedulingSpec = Field(default_factory=SchedulingSpec)
    """Node selection, tolerations, priority and Kueue queue."""

    env: list[EnvVar] = Field(default_factory=list, max_length=64)
    """Environment of the trainer, e.g. storage credentials from Secrets."""

    env_from: list[EnvFromSource] = Field(default_factory=list, max_length=16)
    """Secrets whose keys become environment variables of the trainer."""

    @model_validator(mode="after")
    def _few_secrets(self) -> FineTuneJobSpec:
        count = sum(var.secret_key_ref is not None for var in self.env) + len(self.env_from)
        if count > MAX_SECRET_REFERENCES:
            raise ValueError(f"env, envFrom: at most {MAX_SECRET_REFERENCES} Secret references (got {count}; the "
                             "admission guard checks each against its author's rights)")
        return self

    @model_validator(mode="after")
    def _stage_names_unique(self) -> FineTuneJobSpec:
        seen: set[str] = set()
        for stage in self.stages:
            if stage.name in seen:
                raise ValueError(f"stages: name {stage.name!r} is used twice")
            seen.add(stage.name)
        return self

    @model_validator(mode="after")
    def _sweep_has_what_it_needs(self) -> FineTuneJobSpec:
        for index, stage in enumerate(self.stages):
            if stage.sweep is None:
                continue
            if self.dataset.splits.validation is None:
                raise ValueError(f"stages[{index}].sweep: needs a validation split to pick the best candidate "
                                 "(set dataset.splits.validation)")
            if self.augmentation.enabled:
                raise ValueError(f"stages[{index}].sweep: a sweep trains on cached features, which augmentation "
                                 "rules out (turn augmentation off, or drop the sweep)")
        return self

    @model_validator(mode="after")
    def _early_stopping_has_its_metric(self) -> FineTuneJobSpec:
        if self.dataset.splits.validation is not None:
            return self
        for index, stage in enumerate(self.stages):
            stopping = stage.early_stopping
            if stopping is not None and stopping.monitor.startswith("val_"):
                raise ValueError(
                    f"stages[{index}].earlyStopping.monitor: {stopping.monitor} needs a validation split "
                    "(set dataset.splits.validation, or monitor loss or accuracy)")
        return self


class FineTuneJob(ApiModel):
    """A fine-tuning job: a pretrained base, a new head, a dataset and a schedule of stages."""

    model_config = ApiModel.model_config | {"extra": "ignore"}

    api_version: Literal["headstart.dev/v1alpha1"] = Field(alias="apiVersion")
    kind: Literal["FineTuneJob"]
    metadata: ObjectMeta
    spec: FineTuneJobSpec
    status: FineTuneJobStatus | None = None

    @model_validator(mode="after")
    def _not_from_itself(self) -> FineTuneJob:
        if self.spec.base_model.from_job == self.metadata.name:
            raise ValueError("spec.baseModel.fromJob: a job cannot start from its own output")
        return self

    @property
    def name(self) -> str:
        """The job's name (metadata.name)."""
        return self.metadata.name

    def __repr__(self) -> str:  # a notebook shows this: who it is and where it stands, not every field
        status = self.status
        parts = [f"name={self.name!r}"]
        if self.metadata.namespace:
            parts.append(f"namespace={self.metadata.namespace!r}")
        if status is not None and status.phase is not None:
            parts.append(f"phase={status.phase.value!r}")
            parts += [f"reason={status.reason!r}"] if status.reason else []
            if status.stage:
                epoch = f" epoch {status.epoch}/{status.epochs}" if status.epoch is not None else ""
                parts.append(f"stage={status.stage + epoch!r}")
            if status.model is not None:
                parts.append(f"model={status.model.uri!r}")
        parts.append(f"stages={[s.name for s in self.spec.stages]!r}")
        return f"FineTuneJob({', '.join(parts)})"

    __str__ = __repr__

    def to_manifest(self) -> dict:
        """The job as a manifest: apiVersion, kind, its metadata and the spec as the user wrote it (camelCase,
        no defaults written in), no status."""
        return {"apiVersion": self.api_version, "kind": self.kind, "metadata": self.metadata.to_wire(),
                "spec": self.spec.to_wire()}


def manifest(name: str, namespace: str | None, spec: dict, uid: str | None = None) -> dict:
    """A FineTuneJob manifest of a raw ``spec`` (as stored: camelCase), as the operator hands it on (with the
    job's ``uid``: its outputs and checkpoints are owned by it)."""
    metadata = {"name": name} if namespace is None else {"name": name, "namespace": namespace}
    if uid:
        metadata["uid"] = uid
    return {"apiVersion": API_VERSION, "kind": KIND, "metadata": metadata, "spec": spec}
