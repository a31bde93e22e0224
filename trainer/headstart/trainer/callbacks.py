"""Keras callbacks of the trainer (this module imports Keras; import it lazily)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import keras


class ResumableEarlyStopping(keras.callbacks.EarlyStopping):
    """keras EarlyStopping whose state (wait, best, best epoch and weights) survives a restart."""

    _resume: dict | None = None
    _resume_weights: list | None = None

    def resume_from(self, state: dict | None, weights: list | None) -> None:
        self._resume, self._resume_weights = state, weights

    def on_train_begin(self, logs: Any = None) -> None:
        super().on_train_begin(logs)
        if self._resume:
            self.wait = int(self._resume["wait"])
            self.best = self._resume["best"]
            self.best_epoch = int(self._resume["best_epoch"])
            self.best_weights = self._resume_weights

    def state(self) -> dict:
        best = None if self.best is None else float(self.best)
        return {"wait": int(self.wait), "best": best, "best_epoch": int(self.best_epoch)}


class EpochEnd(keras.callbacks.Callback):
    """Calls ``fn(epoch, logs)`` after every epoch (checkpoint, then report); put it last."""

    def __init__(self, fn: Callable[[int, dict], None]):
        super().__init__()
        self.fn = fn

    def on_epoch_end(self, epoch: int, logs: dict | None = None) -> None:
        self.fn(epoch, dict(logs or {}))


class BatchEnd(keras.callbacks.Callback):
    """Calls ``fn(batch)`` after every training batch (progress bars)."""

    def __init__(self, fn: Callable[[int], None]):
        super().__init__()
        self.fn = fn

    def on_train_batch_end(self, batch: int, logs: dict | None = None) -> None:
        self.fn(batch + 1)


def tensorboard(log_dir: str) -> Any | None:
    """A TensorBoard callback, or None when the tensorboard package is not installed."""
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        return None
    return keras.callbacks.TensorBoard(log_dir=log_dir, write_graph=False, profile_batch=0)
