"""A head sweep: a frozen stage trains its head once per candidate (learning rate, dropout) on the features
computed once, and the best by the sweep's monitor on validation continues.

Every candidate starts where the stage starts: the head's variables (its weights and its dropout's seed
state) and the optimizer's are put back, the data comes in the same order (a fresh dataset with the job's
seed), so a candidate trains exactly as a job with its learning rate alone would. The head is compiled once:
the learning rate is the optimizer's variable, set per candidate; a new dropout rate retraces the step once.
A sweep is not checkpointed inside: it is cheap by construction, and a run stopped in it sweeps again.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from headstart.api import StageSpec

from . import stages, termination
from .errors import TerminatedError

DROPOUT_LAYER = "dropout"
"""The name of the head's dropout layer before its output (head.assemble)."""


@dataclass
class Outcome:
    """How one candidate did."""

    learning_rate: float
    dropout: float
    monitor: str
    value: float | None
    """The monitor for the weights the candidate continues with (evaluated on validation after its fit)."""
    epochs_completed: int
    history: dict[str, list[float]] = field(default_factory=dict)
    chosen: bool = False

    def to_dict(self) -> dict:
        """The candidate as reporting.StageResult.candidates holds it (status.stages[].candidates)."""
        return {"learning_rate": self.learning_rate, "dropout": self.dropout, "monitor": self.monitor,
                "value": self.value, "epochs_completed": self.epochs_completed, "chosen": self.chosen}


def better(monitor: str, value: float | None, than: float | None) -> bool:
    """Whether ``value`` beats ``than`` (lower loss, higher accuracy); a non-finite value never does."""
    if value is None or not math.isfinite(value):
        return False
    if than is None:
        return True
    return value < than if monitor.endswith("loss") else value > than


@dataclass
class Sweep:
    """Runs one stage's sweep on ``head`` (compiled for the stage, its optimizer built).

    ``fit(candidate_stage, callbacks)`` fits the head for one candidate on fresh datasets and returns Keras'
    History; ``evaluate()`` returns the head's metrics on the validation features; ``message`` reports."""

    stage: StageSpec
    index: int
    head: Any
    default_dropout: float
    fit: Callable[[StageSpec, list[Any]], Any]
    evaluate: Callable[[], dict[str, float]]
    message: Callable[[str], None]
    outcomes: list[Outcome] = field(default_factory=list)

    def run(self) -> Outcome:
        """Train every candidate; leave the best's weights in the head and return it (marked chosen)."""
        import numpy as np

        sweep = self.stage.sweep
        assert sweep is not None
        monitor = sweep.monitor_for(self.stage.early_stopping)
        candidates = sweep.candidates(self.stage.optimizer.learning_rate, self.default_dropout)
        head_start = [np.array(v) for v in self.head.variables]
        optimizer_start = [np.array(v) for v in self.head.optimizer.variables]
        best: Outcome | None = None
        best_weights: list[Any] | None = None
        for number, (learning_rate, dropout) in enumerate(candidates, start=1):
            self._stop_if_terminated(number, len(candidates))
            _assign(self.head.variables, head_start)
            _assign(self.head.optimizer.variables, optimizer_start)
            self._set_dropout(dropout)
            began = time.monotonic()
            outcome = self._candidate(learning_rate, dropout, monitor)
            self.outcomes.append(outcome)
            shown = "not finite" if outcome.value is None else f"{outcome.value:.4f}"
            self.message(f"sweep {number}/{len(candidates)}: learningRate {learning_rate:g}, dropout {dropout:g}:"
                         f" {monitor} {shown} after {outcome.epochs_completed} epochs "
                         f"({time.monotonic() - began:.1f} s)")
            if best is None or better(monitor, outcome.value, best.value):
                best, best_weights = outcome, [np.array(v) for v in self.head.variables]
        assert best is not None and best_weights is not None
        _assign(self.head.variables, best_weights)
        self._set_dropout(best.dropout)
        best.chosen = True
        self.message(f"sweep: learningRate {best.learning_rate:g}, dropout {best.dropout:g} continues "
                     f"({monitor} {'not finite' if best.value is None else f'{best.value:.4f}'})")
        return best

    def _candidate(self, learning_rate: float, dropout: float, monitor: str) -> Outcome:
        stage = self.stage
        optimizer = stage.optimizer.model_copy(update={"learning_rate": learning_rate})
        candidate = stage.model_copy(update={"optimizer": optimizer, "sweep": None})
        self.head.optimizer.learning_rate = stages.learning_rate_at(optimizer, 0, stage.epochs)
        callbacks = [c for c in (stages.schedule_callback(candidate), stages.early_stopping_callback(candidate))
                     if c is not None]
        history = dict(self.fit(candidate, callbacks).history)
        epochs = max((len(v) for v in history.values()), default=0)
        history.setdefault("learning_rate", [stages.learning_rate_at(optimizer, e, stage.epochs)
                                             for e in range(epochs)])
        value = self.evaluate().get(monitor.removeprefix("val_"))
        value = float(value) if value is not None and math.isfinite(float(value)) else None
        return Outcome(learning_rate, dropout, monitor, value, epochs, {k: [float(x) for x in v]
                                                                       for k, v in history.items()})

    def _set_dropout(self, rate: float) -> None:
        layers = [layer for layer in self.head.layers if layer.name == DROPOUT_LAYER]
        if not layers:
            return  # no dropout sweep: the head has its dropout (or none) as the spec says
        if layers[0].rate != rate:
            layers[0].rate = rate
            self.head.train_function = None  # the rate is traced into the step: trace it again
            self.head.test_function = None

    def _stop_if_terminated(self, number: int, count: int) -> None:
        if termination.requested():
            raise TerminatedError(f"terminated (SIGTERM) in stage {self.index + 1} {self.stage.name} before sweep "
                                  f"candidate {number} of {count}: the next run sweeps again")


def _assign(variables: list[Any], values: list[Any]) -> None:
    for variable, value in zip(variables, values, strict=True):
        variable.assign(value)
