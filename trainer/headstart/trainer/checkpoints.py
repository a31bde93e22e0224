"""Checkpoints under ``<output>/checkpoints/``: after every epoch and at every stage boundary.

``state.json`` says what is complete; it is written (atomically, and on a local or mounted file system
fsynced, as every file it names was before it) only after the files it names, so a run killed at any moment,
or a machine that loses power, leaves the previous consistent state. A state that cannot be read fails the
run with its name (``CheckpointError``) and nothing is deleted. Weights and optimizer variables are
plain numpy archives of ``model.get_weights()`` / ``optimizer.variables`` in their (deterministic)
order, independent of Keras' saving formats.

Each save (``Checkpoints.save``, a ``Save``) is one task of a background thread, so the next epoch trains
while the last one's checkpoint (numpy snapshots taken when it was asked for) reaches storage. Inside the
task the files come first, then ``state.json``, then the removal of what it no longer names; the ``Save``
puts them in that order, so no caller can get it wrong. A failing write stops the task there, so
``state.json`` never names a file that was not written and the previous checkpoint is not removed. Each
save first waits for the previous one, so at most one is in flight: when epoch N+1 ends, epoch N's is in
storage. ``flush()`` waits (and raises a failure as OutputError); reads flush first. ``state.json`` records
each file's kind; superseded kinds (a stage's start, an epoch) are removed once no longer named, stage
boundaries stay.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Literal

from headstart.api import storage
from headstart.api.output_manifest import Owner

from .errors import CheckpointError, OutputConflictError, OutputError
from .reporting import StageResult

FORMAT = 3
READABLE_FORMATS = (2, 3)
"""3 added the position inside an epoch (``StageState.batches_done``, ``epoch_metrics``); a format-2 state is
one at an epoch's end. An older trainer refuses a format-3 state as another format (nothing is deleted)."""

FileKind = Literal["start", "epoch", "stage-end"]
"""What a checkpoint file holds: a stage's starting weights, one epoch's state, or a stage boundary."""
SUPERSEDED_KINDS: tuple[FileKind, ...] = ("start", "epoch")
"""Kinds removed once no longer named by state.json; stage boundaries stay."""


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
    batches_done: int = 0
    """Batches of epoch ``epochs_done`` (from 0) trained when a run stopped inside it (SIGTERM); 0 at an epoch's
    end. The weights and optimizer are those after that batch."""
    epoch_metrics: list | None = None
    """The trained model's metric variables (sums and counts) after ``batches_done`` batches, to continue
    that epoch's metrics."""


@dataclass
class State:
    job: str
    spec_sha256: str
    owner: dict[str, str] = field(default_factory=dict)
    """The job it belongs to (namespace, name, uid: an ``Owner``); empty in a state written before owners."""
    stages: list[StageResult] = field(default_factory=list)
    """Completed stages."""
    weights: str | None = None
    current: StageState | None = None
    files: dict[str, FileKind] = field(default_factory=dict)
    """Every checkpoint file written and not yet removed, with its kind."""

    def to_json(self) -> bytes:
        data = {"format": FORMAT, "job": self.job, "owner": self.owner, "spec_sha256": self.spec_sha256,
                "stages": [s.to_dict() for s in self.stages], "weights": self.weights,
                "current": None if self.current is None else self.current.__dict__, "files": self.files}
        return json.dumps(data, indent=1).encode()

    @classmethod
    def from_json(cls, raw: bytes) -> State:
        data = json.loads(raw)
        if data.get("format") not in READABLE_FORMATS:
            raise ValueError("unknown checkpoint format")
        current = data.get("current")
        return cls(job=data["job"], spec_sha256=data["spec_sha256"], owner=dict(data.get("owner") or {}),
                   stages=[StageResult.from_dict(s) for s in data["stages"]], weights=data.get("weights"),
                   current=None if current is None else StageState(**current), files=dict(data["files"]))

    def named(self) -> set[str]:
        """The files state.json needs to resume."""
        names = {self.weights}
        if self.current is not None:
            names |= {self.current.optimizer, self.current.best_weights, self.current.head_weights}
        return {name for name in names if name}


class Save:
    """One checkpoint save, built by a ``with checkpoints.save(state) as save:`` block: the block queues
    files (numpy snapshots taken now) and updates ``state``; when the block ends, the save runs in the
    background as files, then state.json, then the removal of the superseded files it no longer names."""

    def __init__(self, root: str, state: State):
        self.root = root
        self.state = state
        self.named_before = state.named()
        self.writes: list[Callable[[], None]] = []
        self.release_all = False

    def write(self, name: str, kind: FileKind, arrays: list[Any]) -> str:
        """Queue ``arrays`` for writing as ``name``; returns the name for the state to refer to."""
        import numpy as np

        uri = storage.join(self.root, name)

        def write() -> None:
            buf = io.BytesIO()
            np.savez(buf, *arrays)
            storage.write_bytes_atomic(uri, buf.getvalue())

        self.writes.append(write)
        self.state.files[name] = kind
        return name

    def release_superseded(self) -> None:
        """Remove every superseded-kind file, named or not (the outputs are written: no resume needed)."""
        self.release_all = True

    def steps(self) -> list[Callable[[], None]]:
        """The writes, then state.json, then the removals, in that order."""
        keep = set() if self.release_all else self.state.named()
        gone = sorted(name for name, kind in self.state.files.items()
                      if kind in SUPERSEDED_KINDS and name not in keep
                      and (self.release_all or name in self.named_before))
        for name in gone:
            del self.state.files[name]
        state_uri, state_json = storage.join(self.root, "state.json"), self.state.to_json()
        removals = [lambda uri=storage.join(self.root, name): storage.remove(uri) for name in gone]
        return [*self.writes, lambda: storage.write_bytes_atomic(state_uri, state_json), *removals]


class Checkpoints:
    def __init__(self, output_uri: str, owner: Owner, spec_sha256: str):
        self.root = storage.join(output_uri, "checkpoints")
        self.owner = owner
        self.spec_sha256 = spec_sha256
        self._writer: ThreadPoolExecutor | None = None
        self._inflight: Future | None = None

    @contextmanager
    def save(self, state: State) -> Iterator[Save]:
        """One save as one background task (see Save); nothing is queued if the block raises."""
        self.flush()
        save = Save(self.root, state)
        yield save
        steps = save.steps()

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

    def load(self, overwrite: bool = False, say: Callable[[str], None] | None = None) -> State | None:
        """The saved state of this very job and spec, or None (nothing to resume: no state, or one of another
        spec of this job). A state that cannot be read is never taken for "nothing" (which would delete every
        checkpoint): CheckpointError, naming the file. The state of another job (name, namespace or uid) is
        never resumed nor deleted: OutputConflictError naming it, unless ``overwrite`` (then None, and
        ``say`` tells)."""
        self.flush()
        uri = storage.join(self.root, "state.json")
        if not storage.exists(uri):
            return None
        try:
            state = State.from_json(storage.read_bytes(uri))
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            why = "another checkpoint format" if "format" in str(exc) else "truncated or damaged"
            raise CheckpointError(f"{uri} cannot be read ({why}: {type(exc).__name__}: {str(exc)[:120]}); nothing "
                                  "was deleted: move the checkpoints folder away, or set spec.output.overwrite, to "
                                  "train afresh") from exc
        recorded = Owner.recorded({"owner": state.owner, "job": state.job})
        if recorded is None or not self.owner.same_job(recorded):
            if not overwrite:
                raise OutputConflictError(f"{self.root} holds the checkpoints of {recorded or 'an unknown job'}; "
                                          "choose another output or set spec.output.overwrite: true")
            if say is not None:
                say(f"not resuming the checkpoints of {recorded} under {self.root} (spec.output.overwrite)")
            return None
        if state.spec_sha256 != self.spec_sha256:
            return None
        return state

    def clear(self) -> None:
        self.flush()
        storage.remove(self.root)

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
        with self.save(state) as save:
            state.weights = save.write(f"stage-{index:02d}-start.weights.npz", "start", model.get_weights())

    def save_epoch(self, state: State, model: Any, optimizer: Any, improved_weights: list | None,
                   head: Any | None = None) -> None:
        """After an epoch, or inside one (``current.batches_done``): the weights (only the head's when ``head``
        is given: a feature-cache stage, whose base is unchanged since ``state.weights``), the optimizer's
        variables, then state.json."""
        current = state.current
        assert current is not None
        tag = f"stage-{current.index:02d}-epoch-{current.epochs_done:04d}"
        if current.batches_done:  # stopped inside the next epoch
            tag += f"-batch-{current.batches_done:05d}"
        with self.save(state) as save:
            if head is not None:
                assert state.weights is not None, "save_start first"
                current.head_weights = save.write(f"{tag}.head.npz", "epoch", head.get_weights())
            else:
                state.weights = save.write(f"{tag}.weights.npz", "epoch", model.get_weights())
            current.optimizer = save.write(f"{tag}.optimizer.npz", "epoch",
                                           [v.numpy() for v in optimizer.variables])
            if improved_weights is not None:
                current.best_weights = save.write(f"{tag}.best.npz", "epoch", improved_weights)

    def save_stage_end(self, state: State, model: Any, result: StageResult) -> None:
        with self.save(state) as save:
            state.weights = save.write(f"stage-{result.index:02d}-end-{result.name}.weights.npz", "stage-end",
                                       model.get_weights())
            state.stages.append(result)
            state.current = None

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
        if not optimizer.built:  # compile_for_stage builds it (a LossScaleOptimizer must not be built twice)
            optimizer.build(variables)
        self._check(arrays, optimizer.variables, "optimizer variables")
        for var, value in zip(optimizer.variables, arrays):
            var.assign(value)

    def best_weights(self, state: State) -> list | None:
        if state.current is None or state.current.best_weights is None:
            return None
        return self._load_arrays(state.current.best_weights)

    def finish(self, state: State) -> None:
        """After the outputs are written: drop per-epoch and stage-start files, keep the stage boundaries."""
        with self.save(state) as save:
            save.release_superseded()
        self.close()

    def _check(self, arrays: list[Any], variables: list[Any], what: str) -> None:
        shapes = [tuple(a.shape) for a in arrays]
        wanted = [tuple(v.shape) for v in variables]
        if shapes != wanted:
            raise OutputError(f"checkpoint {what} do not fit the model ({len(shapes)} vs {len(wanted)} "
                              f"arrays); remove {self.root} to start over")
