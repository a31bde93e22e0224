"""Where and how it runs on Kubernetes: output, resources, run policy, scheduling, environment.

The trainer reads only ``output`` and ``runtime``; the rest is for the operator.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, ValidationInfo, field_validator, model_validator

from ._base import ApiModel, cel
from .uris import check_uri, scheme_of, uri_cel

QUANTITY_PATTERN = r"^([+-]?[0-9.]+)([eEinumkKMGTP]*[-+]?[0-9]*)$"


LOCAL_OUTPUT = ("a local output would vanish with the training pod: in a cluster use pvc://CLAIM/path, s3:// or "
                "gs:// (local paths, file:// and memory:// are for `headstart run` and --local)")


class OutputSpec(ApiModel):
    """Where the trained model goes, and in which formats."""

    model_config = cel(*uri_cel("uri", writable=True),
                       ("!has(self.uri) || (self.uri.contains('://') && !self.uri.matches('^(?i)(file|memory)://'))",
                        f"uri: {LOCAL_OUTPUT}"))

    uri: str = Field(min_length=1, max_length=2048)
    """Output location: pvc://CLAIM/path, s3:// or gs://; for `headstart run`, also a path or file://."""

    formats: list[Literal["keras", "savedmodel", "tflite"]] = Field(
        default_factory=lambda: ["keras", "savedmodel"], min_length=1, max_length=3,
        json_schema_extra={"x-kubernetes-list-type": "set"})
    """Formats to write: keras (model.keras), savedmodel (for TF Serving), tflite. Default: keras,
    savedmodel."""

    overwrite: bool = False
    """Replace a complete model of another job already at uri. Default: false (refuse)."""

    @field_validator("uri")
    @classmethod
    def _uri(cls, value: str, info: ValidationInfo) -> str:
        check_uri(value, writable=True)
        if (info.context or {}).get("target") == "cluster" and scheme_of(value) in ("file", "memory"):
            raise ValueError(LOCAL_OUTPUT)
        return value

    @field_validator("formats")
    @classmethod
    def _unique(cls, value: list[str]) -> list[str]:
        if len(set(value)) != len(value):
            raise ValueError("must not repeat a format")
        return value


class ResourcesSpec(ApiModel):
    """Compute for the training pod."""

    gpus: int = Field(default=1, ge=0, le=16)
    """NVIDIA GPUs (nvidia.com/gpu). Default: 1."""

    cpu: str | None = Field(default=None, max_length=32, pattern=QUANTITY_PATTERN)
    """CPU request and limit as a Kubernetes quantity, e.g. '4' or '3500m'."""

    memory: str | None = Field(default=None, max_length=32, pattern=QUANTITY_PATTERN)
    """Memory request and limit as a Kubernetes quantity, e.g. '16Gi'."""


class RuntimeSpec(ApiModel):
    """Numerics of the trainer."""

    mixed_precision: bool | None = None
    """Train in mixed_float16. Default: on when a GPU is present."""

    xla: bool | None = None
    """Compile with XLA (jit_compile). Default: on when a GPU is present."""

    deterministic: bool = False
    """Ask TensorFlow for deterministic ops (slower). Default: false."""


class RunPolicy(ApiModel):
    """Retries, deadlines and clean-up of the training Job."""

    backoff_limit: int = Field(default=2, ge=0, le=100)
    """Retries of a failed training pod; it resumes from the last checkpoint. Default: 2."""

    active_deadline_seconds: int | None = Field(default=None, gt=0)
    """Fail the job when it runs longer than this."""

    ttl_seconds_after_finished: int | None = Field(default=None, ge=0)
    """Delete the finished training Job (not the FineTuneJob) after this many seconds."""

    suspend: bool = False
    """Hold the job (or pause it: a running pod is stopped, it resumes from its checkpoint later)."""

    termination_grace_period_seconds: int = Field(default=60, ge=1, le=3600)
    """Seconds a stopped, evicted or preempted training pod has after SIGTERM to finish its step and
    checkpoint where it is inside the epoch, before it is killed. Default: 60."""


class Toleration(ApiModel):
    """A Kubernetes toleration."""

    key: str | None = Field(default=None, max_length=317)
    operator: Literal["Exists", "Equal"] = "Equal"
    value: str | None = Field(default=None, max_length=63)
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: int | None = None


class SchedulingSpec(ApiModel):
    """Where the training pod may run."""

    node_selector: dict[str, str] = Field(default_factory=dict)
    """Node labels the pod requires."""

    tolerations: list[Toleration] = Field(default_factory=list, max_length=32)
    """Taints the pod tolerates."""

    priority_class_name: str | None = Field(default=None, max_length=253)
    """PriorityClass of the pod."""

    queue_name: str | None = Field(default=None, max_length=253)
    """Kueue LocalQueue to submit to (sets kueue.x-k8s.io/queue-name)."""


class SecretKeyRef(ApiModel):
    """A key of a Secret in the job's namespace."""

    name: str = Field(min_length=1, max_length=253)
    key: str = Field(min_length=1, max_length=253)


#: Environment variables the operator and the trainer own: a job's env may not set them (they would
#: override what the operator sets, or steer the trainer from a Secret).
RESERVED_ENV_PREFIXES = ("HEADSTART_", "KUBERNETES_")
RESERVED_ENV_NAMES = ("KERAS_HOME", "TFDS_DATA_DIR")


def _reserved_cel() -> str:
    prefixes = " || ".join(f"self.name.startsWith('{p}')" for p in RESERVED_ENV_PREFIXES)
    return f"!({prefixes} || self.name in {list(RESERVED_ENV_NAMES)!r})"


class EnvVar(ApiModel):
    """An environment variable of the trainer, e.g. storage credentials from a Secret."""

    model_config = cel(("!(has(self.value) && has(self.secretKeyRef))", "give value or secretKeyRef, not both"),
                       (_reserved_cel(), "name: HEADSTART_*, KUBERNETES_*, KERAS_HOME and TFDS_DATA_DIR are "
                                         "set by the operator and may not be given"))

    name: str = Field(min_length=1, max_length=256, pattern=r"^[-._a-zA-Z][-._a-zA-Z0-9]*$")
    value: str | None = None
    secret_key_ref: SecretKeyRef | None = None
    """Take the value from a Secret (never shown in status or logs)."""

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value.startswith(RESERVED_ENV_PREFIXES) or value in RESERVED_ENV_NAMES:
            raise ValueError(f"{value} is set by the operator and may not be given (HEADSTART_*, KUBERNETES_*, "
                             "KERAS_HOME and TFDS_DATA_DIR are reserved)")
        return value

    @model_validator(mode="after")
    def _one(self) -> EnvVar:
        if self.value is not None and self.secret_key_ref is not None:
            raise ValueError("give value or secretKeyRef, not both")
        return self


class SecretRef(ApiModel):
    name: str = Field(min_length=1, max_length=253)


class EnvFromSource(ApiModel):
    """All keys of a Secret as environment variables."""

    secret_ref: SecretRef
