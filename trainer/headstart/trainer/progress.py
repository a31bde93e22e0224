"""Progress as snapshots: the trainer's events turned into :class:`~headstart.api.progress.ProgressSnapshot`s,
and, in a training pod, posted to the operator's progress endpoint.

The pod holds no credential for the API server: it authenticates to the operator with a ServiceAccount
token whose audience names its job (projected by the kubelet into the file ``HEADSTART_PROGRESS_TOKEN``
names, re-read at every request since the kubelet rotates it), over TLS checked against the CA in
``HEADSTART_PROGRESS_CA``, at the URL ``HEADSTART_PROGRESS_URL`` (all three set by the operator).

Training never waits for it: a background thread sends the latest snapshot, at most one per
``HEADSTART_PROGRESS_INTERVAL`` seconds (default 5) besides stage starts, stage ends and the result, and
backs off (up to a minute) while the operator is unreachable. Each snapshot is complete, so one lost
or repeated loses nothing. The final result, or the one-line error, also goes to the container's
termination message (compact JSON under the kubelet's 4 KiB), from which the operator takes the model
when the last snapshot did not arrive.
"""

from __future__ import annotations

import json
import math
import os
import ssl
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO

from headstart.api import names
from headstart.api.progress import ProgressSnapshot
from headstart.api.status import Candidate, ModelStatus
from headstart.api.status import StageResult as StageStatus
from headstart.api.uris import redact

from .reporting import Progress, Reporter, RunPlan, StagePlan, StageResult, TrainResult

MAX_BACKOFF = 60.0
TERMINATION_LIMIT = 4096  # bytes the kubelet keeps of a termination message
REQUEST_TIMEOUT = 5.0
FINAL_FLUSH_SECONDS = 15.0


def finite(metrics: dict[str, float]) -> dict[str, float]:
    """The finite metrics, to 4 significant digits: what `kubectl get ftj` shows (0.8587, not
    0.8587360382080078); metrics.json in the output keeps every digit."""
    return {k: float(f"{float(v):.4g}") for k, v in metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(v)}


def stage_status(result: StageResult) -> StageStatus:
    """One entry of status.stages."""
    best = result.best_val_accuracy
    return StageStatus(name=result.name, epochs_completed=result.epochs_completed,
                       duration_seconds=round(result.duration_seconds, 3), stopped_early=result.stopped_early,
                       best_val_accuracy=best if best is not None and math.isfinite(best) else None,
                       candidates=[Candidate(**c) for c in result.candidates] or None)


def model_status(result: TrainResult) -> ModelStatus:
    """status.model: where the model is (its credentials redacted: status is for anyone who may read the
    job), the manifest's digest, the formats, the class names and the model card's pictures."""
    model = result.model
    return ModelStatus(uri=redact(model.uri), sha256=model.sha256, formats=list(model.formats),
                       class_names=list(model.class_names), pictures=list(model.pictures))


class SnapshotReporter(Reporter):
    """Keeps the latest snapshot as the trainer reports, and hands each new one to ``sink(snapshot,
    urgent)``; urgent ones (stage starts and ends, the result) must not be held back by a rate limit."""

    def __init__(self, sink: Callable[[ProgressSnapshot, bool], None]):
        self.sink = sink
        self.snapshot = ProgressSnapshot(seq=0)

    def _emit(self, urgent: bool, **fields: Any) -> None:
        values = {**self.snapshot.__dict__, **fields, "seq": self.snapshot.seq + 1}
        self.snapshot = ProgressSnapshot(**values)
        self.sink(self.snapshot, urgent)

    def started(self, plan: RunPlan) -> None:
        # The stages an earlier run finished (from its checkpoint) stay in status.stages.
        self._emit(True, stages=[stage_status(s) for s in plan.completed])

    def stage_started(self, stage: StagePlan, initial_epoch: int, steps: int | None) -> None:
        self._emit(True, stage=stage.name, stage_index=stage.index, epoch=initial_epoch, epochs=stage.epochs)

    def epoch_ended(self, progress: Progress) -> None:
        self._emit(False, stage=progress.stage, stage_index=progress.stage_index, epoch=progress.epoch,
                   epochs=progress.epochs, metrics=finite(progress.metrics))

    def stage_ended(self, result: StageResult) -> None:
        stages = [s for s in self.snapshot.stages if s.name != result.name] + [stage_status(result)]
        self._emit(True, stages=stages, epoch=result.epochs_completed)

    def completed(self, result: TrainResult) -> None:
        stages = [stage_status(s) for s in result.stages] or list(self.snapshot.stages)
        self._emit(True, model=model_status(result), metrics={**self.snapshot.metrics, **finite(result.metrics)},
                   stages=stages)


class ProgressClient:
    """POSTs snapshots to one job's progress resource on the operator's endpoint."""

    def __init__(self, url: str, token_file: str, ca_pem: str | None, timeout: float = REQUEST_TIMEOUT):
        self.url, self.token_file, self.timeout = url, token_file, timeout
        self.context = ssl.create_default_context(cadata=ca_pem) if ca_pem else ssl.create_default_context()

    def post(self, snapshot: ProgressSnapshot) -> dict:
        with open(self.token_file, encoding="utf-8") as fh:  # re-read: the kubelet rotates it
            token = fh.read().strip()
        request = urllib.request.Request(self.url, data=snapshot.model_dump_json(by_alias=True).encode(),
                                         method="POST", headers={"Authorization": f"Bearer {token}",
                                                                 "Content-Type": "application/json"})
        with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as resp:
            return json.loads(resp.read() or b"{}")


class Sender:
    """Sends the latest snapshot from a background thread: urgent ones at once, others at most every
    ``min_interval`` seconds; failures back off (bounded) and keep the snapshot for the next try."""

    def __init__(self, client: ProgressClient | Any, min_interval: float = 5.0,
                 clock: Callable[[], float] = time.monotonic, stream: TextIO | None = None):
        self.client, self.min_interval, self.clock = client, min_interval, clock
        self.stream = stream or sys.stderr
        self.lock = threading.Condition()
        self.latest: ProgressSnapshot | None = None
        self.urgent = False
        self.sent_seq = 0
        self.last_sent = -math.inf
        self.failures = 0
        self.retry_at = -math.inf
        self.warned = False
        self.closing = False
        self.thread: threading.Thread | None = None

    def submit(self, snapshot: ProgressSnapshot, urgent: bool) -> None:
        with self.lock:
            self.latest = snapshot
            self.urgent = self.urgent or urgent
            if self.thread is None:
                self.thread = threading.Thread(target=self._loop, name="headstart-progress", daemon=True)
                self.thread.start()
            self.lock.notify()

    def _due_in(self) -> float | None:
        """Seconds until the latest snapshot should go (0: now), or None when there is nothing to send."""
        if self.latest is None or self.latest.seq <= self.sent_seq:
            return None
        now = self.clock()
        wait = self.retry_at - now
        if not self.urgent and not self.closing:
            wait = max(wait, self.last_sent + self.min_interval - now)
        return max(wait, 0.0)

    def _loop(self) -> None:
        while True:
            with self.lock:
                due = self._due_in()
                while due is None or due > 0:
                    if self.closing and due is None:
                        return
                    self.lock.wait(timeout=due)
                    due = self._due_in()
                snapshot, self.urgent = self.latest, False
            self.send(snapshot)

    def send(self, snapshot: ProgressSnapshot) -> bool:
        """One attempt; True when the operator took it (or knew a newer one)."""
        try:
            self.client.post(snapshot)
        except (OSError, urllib.error.URLError, ValueError) as exc:  # HTTPError is a URLError
            with self.lock:
                self.failures += 1
                self.retry_at = self.clock() + min(MAX_BACKOFF, max(self.min_interval, 1.0) * 2 ** min(
                    self.failures, 10))
                warn, self.warned = not self.warned, True
            if warn:
                print(f"warning: cannot report progress to the operator ({exc}); training goes on",
                      file=self.stream, flush=True)
            return False
        with self.lock:
            self.sent_seq = max(self.sent_seq, snapshot.seq)
            self.failures, self.last_sent, self.retry_at = 0, self.clock(), -math.inf
        return True

    def close(self, timeout: float = FINAL_FLUSH_SECONDS) -> None:
        """Send what is left (one last try, even while backing off), then stop the thread."""
        with self.lock:
            self.closing = True
            pending = self.latest is not None and self.latest.seq > self.sent_seq
            if pending:
                self.retry_at, self.urgent = -math.inf, True
            self.lock.notify()
            thread = self.thread
        if thread is not None:
            thread.join(timeout=timeout)


def termination_message(result: dict[str, Any]) -> str:
    """Compact JSON under the kubelet's 4 KiB limit (class names, then metrics, then stages, dropped if need
    be)."""
    text = json.dumps(result, separators=(",", ":"))
    for drop in (("model", "classNames"), ("metrics",), ("stages",)):
        if len(text.encode()) <= TERMINATION_LIMIT:
            break
        target = result
        for key in drop[:-1]:
            target = target.get(key, {})
        target.pop(drop[-1], None)
        text = json.dumps(result, separators=(",", ":"))
    return text[:TERMINATION_LIMIT]


class PodReporter(SnapshotReporter):
    """The training pod's reporter: snapshots to the operator (:class:`Sender`), the result or error to the
    termination message."""

    def __init__(self, sender: Sender, termination_log: str | None = None):
        super().__init__(sender.submit)
        self.sender = sender
        self.termination_log = termination_log

    def _write_termination(self, result: dict[str, Any]) -> None:
        if not self.termination_log:
            return
        try:
            with open(self.termination_log, "w", encoding="utf-8") as fh:
                fh.write(termination_message(result))
        except OSError:
            pass

    def completed(self, result: TrainResult) -> None:
        super().completed(result)
        model = self.snapshot.model.to_wire(exclude_unset=False) if self.snapshot.model else {}
        # the stages without a sweep's candidates: the operator's status.stages if the last snapshots are lost
        stages = [s.to_wire(exclude_unset=False) | {"candidates": None} for s in self.snapshot.stages]
        self._write_termination({"model": model, "metrics": dict(self.snapshot.metrics),
                                 "stages": [{k: v for k, v in s.items() if v is not None} for s in stages]})

    def failed(self, reason: str) -> None:
        self._write_termination({"error": reason})

    def close(self) -> None:
        self.sender.close()


def from_environment(env: dict[str, str] | None = None) -> PodReporter | None:
    """The reporter the operator configured through the pod's environment, or None outside a cluster."""
    env = dict(os.environ if env is None else env)
    url, token = env.get(names.ENV_PROGRESS_URL), env.get(names.ENV_PROGRESS_TOKEN)
    if not url or not token:
        return None
    try:
        interval = max(float(env.get(names.ENV_PROGRESS_INTERVAL, "5")), 0.0)
    except ValueError:
        interval = 5.0
    termination = env.get(names.ENV_TERMINATION_LOG, names.TERMINATION_LOG)
    try:
        client = ProgressClient(url, token, env.get(names.ENV_PROGRESS_CA) or None)
    except ssl.SSLError as exc:  # a CA that does not parse: train anyway, the termination message still reports
        print(f"warning: cannot report progress to the operator (its CA: {exc}); training goes on",
              file=sys.stderr, flush=True)
        return None
    return PodReporter(Sender(client, min_interval=interval),
                       termination_log=termination if os.path.exists(termination) else None)
