"""Progress from inside the training pod: the FineTuneJob's status, patched by the pod's own ServiceAccount.

On when ``HEADSTART_FINETUNEJOB_NAME`` and ``HEADSTART_FINETUNEJOB_NAMESPACE`` are set (the operator sets
them). Patches only the trainer's fields (stage, stageIndex, epoch, epochs, metrics, stages, model) with a
JSON merge patch on the ``status`` subresource, through the projected ServiceAccount token and the
in-cluster CA, with plain urllib: no kubernetes client, no extra dependency.

Training never fails because of it: every request has a short timeout, a failed patch is kept and sent
with the next one, repeated failures back off (up to five minutes), and epochs are rate limited (stage
starts and ends and the result always go out). The final result is also written to the container's
termination message, so the operator can set status.model even when the last patch was lost.
"""

from __future__ import annotations

import json
import math
import os
import ssl
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any, TextIO

from headstart.api import names

from .reporting import Progress, Reporter, RunPlan, StagePlan, StageResult, TrainResult

SA_DIR = "/var/run/secrets/kubernetes.io/serviceaccount"
MIN_INTERVAL_ENV = "HEADSTART_STATUS_INTERVAL"
MAX_BACKOFF = 300.0
TERMINATION_LIMIT = 4096  # bytes the kubelet keeps of a termination message


class StatusClient:
    """GET and merge-PATCH one FineTuneJob's status subresource."""

    def __init__(self, server: str, namespace: str, name: str, token_file: str, ca_file: str | None,
                 timeout: float = 5.0):
        self.url = (f"{server.rstrip('/')}/apis/{names.GROUP}/v1alpha1/namespaces/{namespace}/finetunejobs/"
                    f"{name}/status")
        self.token_file, self.ca_file, self.timeout = token_file, ca_file, timeout
        self._context: ssl.SSLContext | None = None

    @property
    def context(self) -> ssl.SSLContext | None:
        if self._context is None and self.ca_file:
            self._context = ssl.create_default_context(cafile=self.ca_file)  # OSError if missing: a failed call
        return self._context

    @classmethod
    def in_cluster(cls, namespace: str, name: str, env: dict[str, str] | None = None) -> StatusClient:
        env = dict(os.environ if env is None else env)
        host = env.get("KUBERNETES_SERVICE_HOST", "kubernetes.default.svc")
        port = env.get("KUBERNETES_SERVICE_PORT", "443")
        if ":" in host:
            host = f"[{host}]"
        return cls(f"https://{host}:{port}", namespace, name, f"{SA_DIR}/token", f"{SA_DIR}/ca.crt")

    def _call(self, method: str, body: dict | None = None) -> dict:
        with open(self.token_file, encoding="utf-8") as fh:  # re-read: the kubelet rotates it
            token = fh.read().strip()
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(self.url, data=data, method=method, headers={
            "Authorization": f"Bearer {token}", "Accept": "application/json",
            "Content-Type": "application/merge-patch+json"})
        with urllib.request.urlopen(request, timeout=self.timeout, context=self.context) as resp:
            return json.loads(resp.read() or b"{}")

    def get_status(self) -> dict:
        return self._call("GET").get("status") or {}

    def patch_status(self, status: dict) -> None:
        self._call("PATCH", {"status": status})


def _finite(metrics: dict[str, float]) -> dict[str, float]:
    """The finite metrics, to 4 significant digits: what `kubectl get ftj` shows (0.8587, not
    0.8587360382080078); metrics.json in the output keeps every digit."""
    return {k: float(f"{float(v):.4g}") for k, v in metrics.items()
            if isinstance(v, (int, float)) and math.isfinite(v)}


def _stage_entry(result: StageResult) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": result.name, "epochsCompleted": result.epochs_completed,
                             "durationSeconds": round(result.duration_seconds, 3),
                             "stoppedEarly": result.stopped_early}
    if result.best_val_accuracy is not None and math.isfinite(result.best_val_accuracy):
        entry["bestValAccuracy"] = result.best_val_accuracy
    return entry


def termination_message(result: dict[str, Any]) -> str:
    """Compact JSON under the kubelet's 4 KiB limit (class names, then metrics, dropped if need be)."""
    text = json.dumps(result, separators=(",", ":"))
    for drop in (("model", "classNames"), ("metrics",)):
        if len(text.encode()) <= TERMINATION_LIMIT:
            break
        target = result
        for key in drop[:-1]:
            target = target.get(key, {})
        target.pop(drop[-1], None)
        text = json.dumps(result, separators=(",", ":"))
    return text[:TERMINATION_LIMIT]


class KubeStatusReporter(Reporter):
    """Writes the trainer's status fields of one FineTuneJob, best effort (see the module's docstring)."""

    def __init__(self, client: StatusClient, min_interval: float = 5.0, termination_log: str | None = None,
                 clock: Callable[[], float] = time.monotonic, stream: TextIO | None = None):
        self.client, self.min_interval, self.clock = client, min_interval, clock
        self.termination_log = termination_log
        self.stream = stream or sys.stderr
        self.pending: dict[str, Any] = {}
        self.stages: list[dict[str, Any]] = []
        self.last_sent = -math.inf
        self.failures = 0
        self.retry_at = -math.inf
        self.warned = False

    # -- sending ---------------------------------------------------------------------------------------

    def _flush(self, force: bool = False) -> None:
        now = self.clock()
        if not self.pending or now < self.retry_at or (not force and now - self.last_sent < self.min_interval):
            return
        try:
            self.client.patch_status(self.pending)
        except (OSError, urllib.error.URLError, ValueError) as exc:  # HTTPError is a URLError
            self.failures += 1
            self.retry_at = now + min(MAX_BACKOFF, self.min_interval * 2 ** min(self.failures, 10))
            if not self.warned:
                self.warned = True
                print(f"warning: cannot update the FineTuneJob's status ({exc}); training goes on",
                      file=self.stream, flush=True)
            return
        self.pending, self.failures, self.last_sent, self.retry_at = {}, 0, now, -math.inf

    def _update(self, fields: dict[str, Any], force: bool = False) -> None:
        self.pending.update(fields)
        self._flush(force)

    def _write_termination(self, result: dict[str, Any]) -> None:
        if not self.termination_log:
            return
        try:
            with open(self.termination_log, "w", encoding="utf-8") as fh:
                fh.write(termination_message(result))
        except OSError:
            pass

    # -- the Reporter interface ------------------------------------------------------------------------

    def started(self, plan: RunPlan) -> None:
        if plan.resume:
            # The stages a previous pod finished stay in status.stages: keep them, the rest is redone.
            try:
                before = self.client.get_status().get("stages") or []
            except (OSError, urllib.error.URLError, ValueError):
                before = []
            self.stages = [dict(s) for s in before[:plan.resume[0]]]

    def stage_started(self, stage: StagePlan, initial_epoch: int, steps: int | None) -> None:
        self._update({"stage": stage.name, "stageIndex": stage.index, "epoch": initial_epoch,
                      "epochs": stage.epochs}, force=True)

    def epoch_ended(self, progress: Progress) -> None:
        self._update({"stage": progress.stage, "stageIndex": progress.stage_index, "epoch": progress.epoch,
                      "epochs": progress.epochs, "metrics": _finite(progress.metrics)})

    def stage_ended(self, result: StageResult) -> None:
        self.stages = [s for s in self.stages if s.get("name") != result.name] + [_stage_entry(result)]
        self._update({"stages": list(self.stages), "epoch": result.epochs_completed}, force=True)

    def completed(self, result: TrainResult) -> None:
        model = {"uri": result.model.uri, "sha256": result.model.sha256, "formats": list(result.model.formats),
                 "classNames": list(result.model.class_names)}
        fields = {"model": model, "metrics": _finite(result.metrics),
                  "stages": [_stage_entry(s) for s in result.stages] or list(self.stages)}
        self._write_termination({"model": dict(model), "metrics": dict(fields["metrics"])})
        self._update(fields, force=True)

    def failed(self, reason: str) -> None:
        self._write_termination({"error": reason})
        self._flush(force=True)


class Fanout(Reporter):
    """Every event to each of several reporters, in order."""

    def __init__(self, *reporters: Reporter):
        self.reporters = reporters

    def _each(self, method: str, *args: Any) -> None:
        for reporter in self.reporters:
            getattr(reporter, method)(*args)

    def started(self, plan: RunPlan) -> None:
        self._each("started", plan)

    def stage_started(self, stage: StagePlan, initial_epoch: int, steps: int | None) -> None:
        self._each("stage_started", stage, initial_epoch, steps)

    def batch_ended(self, stage: StagePlan, batch: int, steps: int | None) -> None:
        self._each("batch_ended", stage, batch, steps)

    def epoch_ended(self, progress: Progress) -> None:
        self._each("epoch_ended", progress)

    def stage_ended(self, result: StageResult) -> None:
        self._each("stage_ended", result)

    def message(self, text: str) -> None:
        self._each("message", text)

    def completed(self, result: TrainResult) -> None:
        self._each("completed", result)

    def failed(self, reason: str) -> None:
        self._each("failed", reason)


def from_environment(env: dict[str, str] | None = None) -> KubeStatusReporter | None:
    """The reporter for the FineTuneJob named by the environment, or None outside a cluster."""
    env = dict(os.environ if env is None else env)
    name, namespace = env.get(names.ENV_JOB_NAME), env.get(names.ENV_JOB_NAMESPACE)
    if not name or not namespace:
        return None
    try:
        interval = float(env.get(MIN_INTERVAL_ENV, "5"))
    except ValueError:
        interval = 5.0
    termination = env.get(names.ENV_TERMINATION_LOG, names.TERMINATION_LOG)
    return KubeStatusReporter(StatusClient.in_cluster(namespace, name, env), min_interval=max(interval, 0.0),
                              termination_log=termination if os.path.exists(termination) else None)
