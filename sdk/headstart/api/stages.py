"""How it is trained: the schedule of stages, each with what trains and its optimizer."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Annotated, Literal

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
        """Parse a trainBase value (``none``, ``all``, ``top:N`` or ``from:LAYER``).

        Args:
            value: The value, already checked against TRAIN_BASE_PATTERN (anything but none, all or top:N is read as
                from:LAYER).

        Returns:
            The parsed form.

        Raises:
            ValueError: A ``top:`` value whose N is not an integer.
        """
        if value in ("none", "all"):
            return cls(mode=value)  # type: ignore[arg-type]
        kind, _, arg = value.partition(":")
        if kind == "top":
            return cls(mode="top", top=int(arg))
        return cls(mode="from", from_layer=arg)

    @property
    def frozen(self) -> bool:
        """Whether the base trains not at all (trainBase ``none``)."""
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


#: Most candidates one sweep trains (learning rates x dropouts).
MAX_SWEEP_CANDIDATES = 64

LearningRate = Annotated[float, Field(gt=0.0, le=100.0)]
Dropout = Annotated[float, Field(ge=0.0, lt=1.0)]


class LogRange(ApiModel):
    """``count`` values from ``min`` to ``max`` (both included), evenly spaced on a log scale."""

    model_config = cel(("self.min < self.max", "min must be less than max"))

    min: LearningRate
    max: LearningRate
    count: int = Field(ge=2, le=MAX_SWEEP_CANDIDATES)

    @model_validator(mode="after")
    def _ordered(self) -> LogRange:
        if not self.min < self.max:
            raise ValueError(f"min ({self.min}) must be less than max ({self.max})")
        return self

    def values(self) -> list[float]:
        """The range's values, from min to max."""
        ratio = math.log(self.max / self.min) / (self.count - 1)
        return [float(f"{self.min * math.exp(ratio * i):.6g}") for i in range(self.count)]


class SweepSpec(ApiModel):
    """Train the head once per candidate (each learning rate, each dropout) on the base's features computed
    once; the best by ``monitor`` on the validation split continues into the next stages.

    Only a frozen stage (trainBase none) without augmentation sweeps: its candidates share the cached
    features. Every candidate starts from the same head weights and data order, so a candidate's result is
    the one a job with that learning rate alone would get."""

    model_config = cel(
        ("!(has(self.learningRates) && has(self.learningRateRange))",
         "learningRates, learningRateRange: give one of them, not both"),
        ("has(self.learningRates) || has(self.learningRateRange) || has(self.dropouts)",
         "give learningRates, learningRateRange or dropouts"),
        ("(has(self.learningRates) ? size(self.learningRates) : has(self.learningRateRange) ? "
         "self.learningRateRange.count : 1) * (has(self.dropouts) ? size(self.dropouts) : 1) >= 2",
         "a sweep needs at least two candidates"),
        ("(has(self.learningRates) ? size(self.learningRates) : has(self.learningRateRange) ? "
         "self.learningRateRange.count : 1) * (has(self.dropouts) ? size(self.dropouts) : 1) <= "
         f"{MAX_SWEEP_CANDIDATES}", f"at most {MAX_SWEEP_CANDIDATES} candidates (learningRates or "
         "learningRateRange.count, times dropouts)"),
    )

    learning_rates: list[LearningRate] | None = Field(default=None, min_length=1,
                                                      max_length=MAX_SWEEP_CANDIDATES)
    """The learning rates to try, e.g. [0.3, 0.1, 0.03, 0.01]. Default: the optimizer's learningRate."""

    learning_rate_range: LogRange | None = None
    """Or a log range of them, e.g. {min: 0.001, max: 1.0, count: 8}."""

    dropouts: list[Dropout] | None = Field(default=None, min_length=1, max_length=8)
    """The head's dropout rates (before its output layer) to try. Default: head.dropout."""

    monitor: Literal["val_loss", "val_accuracy"] | None = None
    """What picks the best candidate, on the validation split, for the weights that continue (the best
    epoch's under early stopping with restoreBestWeights, else the last's). Default: the stage's
    earlyStopping monitor as measured on validation, else val_loss."""

    @model_validator(mode="after")
    def _one_way(self) -> SweepSpec:
        if self.learning_rates is not None and self.learning_rate_range is not None:
            raise ValueError("learningRates, learningRateRange: give one of them, not both")
        if self.learning_rates is None and self.learning_rate_range is None and self.dropouts is None:
            raise ValueError("give learningRates, learningRateRange or dropouts")
        count = len(self.candidates(1.0, 0.0))
        if count < 2:
            raise ValueError("a sweep needs at least two candidates")
        if count > MAX_SWEEP_CANDIDATES:
            raise ValueError(f"at most {MAX_SWEEP_CANDIDATES} candidates (learningRates or learningRateRange.count, "
                             f"times dropouts; got {count})")
        return self

    def learning_rate_values(self, default: float) -> list[float]:
        """The learning rates to try (``default``: the optimizer's)."""
        if self.learning_rate_range is not None:
            return self.learning_rate_range.values()
        return list(self.learning_rates) if self.learning_rates is not None else [default]

    def dropout_values(self, default: float) -> list[float]:
        """The dropouts to try (``default``: the head's)."""
        return list(self.dropouts) if self.dropouts is not None else [default]

    def candidates(self, learning_rate: float, dropout: float) -> list[tuple[float, float]]:
        """Every (learning rate, dropout) pair, dropout by dropout, in the order given."""
        return [(lr, d) for d in self.dropout_values(dropout) for lr in self.learning_rate_values(learning_rate)]

    def monitor_for(self, early_stopping: EarlyStoppingSpec | None) -> str:
        """The validation metric that picks the best candidate."""
        if self.monitor is not None:
            return self.monitor
        if early_stopping is not None:
            return "val_" + early_stopping.monitor.removeprefix("val_")
        return "val_loss"


class StageSpec(ApiModel):
    """One stage of the schedule, e.g. train the head on a frozen base, then fine-tune."""

    model_config = cel(("!has(self.sweep) || !has(self.trainBase) || self.trainBase == 'none'",
                        "sweep: only a frozen stage (trainBase none) sweeps: its candidates share the cached "
                        "features"))

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

    sweep: SweepSpec | None = None
    """Optional: try several learning rates (and head dropouts) on the cached features of a frozen stage and
    continue with the best; needs a validation split."""

    @field_validator("train_base")
    @classmethod
    def _train_base(cls, value: str) -> str:
        if not re.match(TRAIN_BASE_PATTERN, value):
            raise ValueError("must be none, all, top:N or from:LAYER")
        return value

    @model_validator(mode="after")
    def _sweep_frozen(self) -> StageSpec:
        if self.sweep is not None and self.train_base != "none":
            raise ValueError(f"sweep: only a frozen stage (trainBase none) sweeps: its candidates share the cached "
                             f"features (this stage has trainBase {self.train_base})")
        return self

    @property
    def trainable(self) -> TrainBase:
        """The stage's trainBase, parsed."""
        return TrainBase.parse(self.train_base)
