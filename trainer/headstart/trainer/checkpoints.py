"""Checkpoints under ``<output>/checkpoints/``: after every epoch and at every stage boundary.

``state.json`` says what is complete; it is written (atomically) only after the files it names, so a
run killed at any moment leaves the previous consistent state. Weights and optimizer variables are
plain numpy archives of ``model.get_weights()`` / ``optimizer.variables`` in their (deterministic)
order, independent of Keras' saving formats.

Each save is one task of a background thread, so the next epoch trains while the last one's checkpoint
(numpy snapshots taken when it was asked for) reaches storage. Inside the task the files come first,
then ``state.json``, then the removal of what it no longer names; a failing write stops the task there, so
``state.json`` never names a file that was not written and the previous checkpoint is not removed. Each
save first waits for the previous one, so at most one is in flight: when epoch N+1 ends, epoch N's is in
storage. ``flush()`` waits (and raises a failure as OutputError); reads flush first.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

from . import storage
from .errors import OutputError
from .reporting import StageResult

FORMAT = 1


@dataclass
class StageState:
    """Progress inside the current stage."""

    index: int
    epochs_done: int = 0
    history: dict[str, list[float]] = field(default_factory=dict)
    duration_seconds: float = 0.0
    optimizer: str | None = None
    early_stopping: dict | None = None
    best_weights: str | None = None
    head_weights: str | None = None
    """A feature-cache stage checkpoints only the head: the base has not changed since ``State.weights``."""
    stopped: bool = False


@dataclass
class State:
    job: str
    spec_sha256: str
    stages: list[StageResult] = field(default_factory=list)
    """Completed stages."""
    weights: str | None = None
    current: StageState | None = None

    def to_json(self) -> bytes:
        data = {"format": FORMAT, "job": self.job, "spec_sha256": self.spec_sha256,
                "stages": [s.to_dict() for s in self.stages], "weights": self.weights,
                "current": None if self.current is None else self.current.__dict__}
        return json.dumps(data, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> State:
        data = json.loads(raw)
        if data.get("format") != FORMAT:
            raise ValueError("unknown checkpoint format")
        current = data.get("current")
        return cls(job=data["job"], spec_sha256=data["spec_sha256"],
                   stages=[StageResult.from_dict(s) for s in data["stages"]], weights=data.get("weights"),
                   current=None if current is None else StageState(**current))


class Checkpoints:
    def __init__(self, output_uri: str, job: str, spec_sha256: str):
        self.root = storage.join(output_uri, "checkpoints")
        self.job = job
        self.spec_sha256 = spec_sha256
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: Future | None = None
        self._steps: list[Callable[[], None]] = []

    def _commit(self) -> None:
        """Run the steps gathered by this save, in order, as one background task."""
        steps, self._steps = self._steps, []

        def run() -> None:
            for step in steps:
                step()  # an exception ends the task: nothing after a failed write happens

        if self._writer is None:
            self._writer = ThreadPoolExecutor(max_workers=1, thread_name_prefix="headstart-checkpoints")
        self._inflight = self._writer.submit(run)

    def flush(self, quiet: bool = False) -> None:
        """Wait until the save in flight is in storage (``quiet``: while another error propagates)."""
        future, self._inflight = self._inflight, None
        if future is None:
            return
        try:
            future.result()
        except Exception as exc:
            if not quiet:
                raise OutputError(f"cannot write a checkpoint under {self.root}: {exc}") from exc

    def close(self, quiet: bool = False) -> None:
        """Flush, then end the writer thread."""
        try:
            self.flush(quiet)
        finally:
            writer, self._writer = self._writer, None
            if writer is not None:
                writer.shutdown(wait=True)

    def load(self) -> State | None:
        """The saved state of this very job and spec, or None (nothing to resume)."""
        self.flush()
        uri = storage.join(self.root, "state.json")
        if not storage.exists(uri):
            return None
        try:
            state = State.from_json(storage.read_bytes(uri))
        except (ValueError, KeyError, TypeError):
            return None
        if state.job != self.job or state.spec_sha256 != self.spec_sha256:
            return None
        return state

    def clear(self) -> None:
        self.flush()
        storage.remove(self.root)

    def _save_arrays(self, name: str, arrays: list[Any]) -> str:
        """Queue ``arrays`` (numpy snapshots, not live variables) for writing as ``name``."""
        import numpy as np

        def write() -> None:
            buf = io.BytesIO()
            np.savez(buf, *arrays)
            storage.write_bytes_atomic(storage.join(self.root, name), buf.getvalue())

        self._steps.append(write)
        return name

    def _load_arrays(self, name: str) -> list[Any]:
        import numpy as np

        self.flush()
        try:
            with np.load(io.BytesIO(storage.read_bytes(storage.join(self.root, name)))) as npz:
                return [npz[f"arr_{i}"] for i in range(len(npz.files))]
        except (OSError, ValueError) as exc:
            raise OutputError(f"checkpoint {name} is unreadable: {exc}; remove {self.root} to start over") \
                from exc

    def save_start(self, state: State, model: Any, index: int) -> None:
        """Before a feature-cache stage that has no full checkpoint to build on: the whole model, once."""
        self.flush()
        state.weights = self._save_arrays(f"stage-{index:02d}-start.weights.npz", model.get_weights())
        self._write_state(state)
        self._commit()

    def save_epoch(self, state: State, model: Any, optimizer: Any, improved_weights: list | None,
                   head: Any | None = None) -> None:
        """After an epoch: the weights (only the head's when ``head`` is given: a feature-cache stage, whose
        base is unchanged since ``state.weights``), the optimizer's variables, then state.json."""
        self.flush()
        cur = state.current
        assert cur is not None
        tag = f"stage-{cur.index:02d}-epoch-{cur.epochs_done:04d}"
        old = self._referenced(state)
        if head is not None:
            assert state.weights is not None, "save_start first"
            cur.head_weights = self._save_arrays(f"{tag}.head.npz", head.get_weights())
        else:
            state.weights = self._save_arrays(f"{tag}.weights.npz", model.get_weights())
        cur.optimizer = self._save_arrays(f"{tag}.optimizer.npz", [v.numpy() for v in optimizer.variables])
        if improved_weights is not None:
            cur.best_weights = self._save_arrays(f"{tag}.best.npz", improved_weights)
        self._write_state(state)
        self._drop(old - self._referenced(state))
        self._commit()

    def save_stage_end(self, state: State, model: Any, result: StageResult) -> None:
        self.flush()
        old = self._referenced(state)
        state.weights = self._save_arrays(f"stage-{result.index:02d}-end-{result.name}.weights.npz",
                                          model.get_weights())
        state.stages.append(result)
        state.current = None
        self._write_state(state)
        self._drop(old - self._referenced(state))
        self._commit()

    def _write_state(self, state: State) -> None:
        uri, raw = storage.join(self.root, "state.json"), state.to_json()  # the state as it is now
        self._steps.append(lambda: storage.write_bytes_atomic(uri, raw))

    @staticmethod
    def _referenced(state: State) -> set[str]:
        names = {state.weights}
        if state.current is not None:
            names |= {state.current.optimizer, state.current.best_weights, state.current.head_weights}
        # per-epoch and stage-start files are dropped once superseded; stage boundaries are kept
        return {n for n in names if n and n.split("-")[2].split(".")[0] in ("epoch", "start")}

    def _drop(self, names: set[str]) -> None:
        for uri in [storage.join(self.root, name) for name in names]:
            self._steps.append(lambda uri=uri: storage.remove(uri))

    def restore_weights(self, state: State, model: Any, head: Any) -> None:
        if state.weights is None:
            return
        arrays = self._load_arrays(state.weights)
        self._check(arrays, model.weights, "model weights")
        model.set_weights(arrays)
        if state.current is not None and state.current.head_weights is not None:
            arrays = self._load_arrays(state.current.head_weights)
            self._check(arrays, head.weights, "head weights")
            head.set_weights(arrays)

    def restore_optimizer(self, state: State, optimizer: Any, variables: list[Any]) -> None:
        if state.current is None or state.current.optimizer is None:
            return
        arrays = self._load_arrays(state.current.optimizer)
        optimizer.build(variables)
        self._check(arrays, optimizer.variables, "optimizer variables")
        for var, value in zip(optimizer.variables, arrays):
            var.assign(value)

    def best_weights(self, state: State) -> list | None:
        if state.current is None or state.current.best_weights is None:
            return None
        return self._load_arrays(state.current.best_weights)

    def finish(self, state: State) -> None:
        """After the outputs are written: drop per-epoch files, keep the stage boundaries."""
        self.flush()
        self._drop(self._referenced(state))
        self._commit()
        self.close()

    def _check(self, arrays: list[Any], variables: list[Any], what: str) -> None:
        shapes = [tuple(a.shape) for a in arrays]
        wanted = [tuple(v.shape) for v in variables]
        if shapes != wanted:
            raise OutputError(f"checkpoint {what} do not fit the model ({len(shapes)} vs {len(wanted)} "
                              f"arrays); remove {self.root} to start over")
