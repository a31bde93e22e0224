"""How it is trained: the schedule of stages, each with what trains and its optimizer."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from pydantic import Field, field_validator, model_validator

from ._base import ApiModel, cel
from .keras_names import WITH_MOMENTUM

TRAIN_BASE_PATTERN = r"^(none|all|top:[1-9][0-9]{0,4}|from:[^\s]{1,256})$"


@dataclass(frozen=True)
class TrainBase:
    """The parsed form of a stage's trainBase."""

    mode: Literal["none", "all", "top", "from"]
    top: int | None = None
    from_layer: str | None = None

    @classmethod
    def parse(cls, value: str) -> TrainBase:
        if value in ("none", "all"):
            return cls(mode=value)  # type: ignore[arg-type]
        kind, _, arg = value.partition(":")
        if kind == "top":
            return cls(mode="top", top=int(arg))
        return cls(mode="from", from_layer=arg)

    @property
    def frozen(self) -> bool:
        return self.mode == "none"


class ScheduleSpec(ApiModel):
    """A learning-rate schedule over the stage, starting from the optimizer's learningRate."""

    type: Literal["cosine", "exponential"]
    """cosine: decay to alpha x learningRate by the end of the stage; exponential: x decayRate per epoch."""

    decay_rate: float = Field(default=0.9, gt=0.0, le=1.0)
    """Exponential schedule: factor applied per epoch. Default: 0.9."""

    alpha: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Cosine schedule: final learning rate as a fraction of the initial one. Default: 0."""

    warmup_epochs: int = Field(default=0, ge=0, le=1000)
    """Epochs of linear warm-up from 0 to learningRate before the schedule starts. Default: 0."""


class OptimizerSpec(ApiModel):
    """The optimizer of a stage; type names the keras.optimizers class."""

    model_config = cel(
        (f"!has(self.momentum) || self.momentum == 0.0 || self.type in {list(WITH_MOMENTUM)!r}",
         f"momentum: only {' and '.join(WITH_MOMENTUM)} take momentum"),
    )

    type: Literal["SGD", "Adam", "AdamW", "RMSprop"]
    """The keras.optimizers class: SGD, Adam, AdamW or RMSprop."""

    learning_rate: float = Field(gt=0.0, le=100.0)
    """Initial learning rate; high to train a new head, low to fine-tune the base."""

    momentum: float = Field(default=0.0, ge=0.0, lt=1.0)
    """Momentum (SGD, RMSprop). Default: 0."""

    weight_decay: float | None = Field(default=None, ge=0.0, lt=1.0)
    """Weight decay. Default: none (AdamW: Keras' default 0.004)."""

    schedule: ScheduleSpec | None = None
    """Optional learning-rate schedule."""

    @model_validator(mode="after")
    def _momentum(self) -> OptimizerSpec:
        if self.momentum and self.type not in WITH_MOMENTUM:
            raise ValueError(f"momentum: optimizer type {self.type} takes no momentum "
                             f"(only {' and '.join(WITH_MOMENTUM)} do)")
        return self


class EarlyStoppingSpec(ApiModel):
    """Stop a stage early when the monitored metric stops improving."""

    monitor: Literal["val_loss", "val_accuracy", "loss", "accuracy"] = "val_loss"
    """Metric to watch. Default: val_loss."""

    patience: int = Field(default=3, ge=0, le=10000)
    """Epochs without improvement before stopping. Default: 3."""

    min_delta: float = Field(default=0.0, ge=0.0)
    """Smallest change that counts as an improvement. Default: 0."""

    restore_best_weights: bool = True
    """Return to the best epoch's weights when stopping. Default: true."""


class StageSpec(ApiModel):
    """One stage of the schedule, e.g. train the head on a frozen base, then fine-tune."""

    name: str = Field(min_length=1, max_length=63, pattern=r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
    """Name of the stage (lower-case letters, digits and '-'), unique within the job."""

    train_base: str = Field(default="none", max_length=262, pattern=TRAIN_BASE_PATTERN)
    """What of the base trains: 'none' (frozen), 'all', 'top:N' (its top N layers) or 'from:LAYER' (that
    layer and all after it). The head always trains. Default: none."""

    epochs: int = Field(gt=0, le=100000)
    """Number of epochs of this stage."""

    optimizer: OptimizerSpec
    """Optimizer and learning rate of this stage."""

    early_stopping: EarlyStoppingSpec | None = None
    """Optional early stopping."""

    @field_validator("train_base")
    @classmethod
    def _train_base(cls, value: str) -> str:
        if not re.match(TRAIN_BASE_PATTERN, value):
            raise ValueError("must be none, all, top:N or from:LAYER")
        return value

    @property
    def trainable(self) -> TrainBase:
        return TrainBase.parse(self.train_base)
