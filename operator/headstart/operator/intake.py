"""Progress snapshots in, the trainer's status fields out: what the progress endpoint does with a request
whose token the API server accepted.

A snapshot is taken only from a pod of the job's own training Job (kopf's indexes: the FineTuneJob, the Job
it controls, that Job's pods); the newest wins (ordered by the pod's creation, then the snapshot's
``seq``), an older one is ignored. Taking a snapshot only records it: one writer task per job writes the
latest to status afterwards, through the reconciler's lock, so a burst of snapshots of one job costs one
patch per API round trip, and a write that fails is retried with a bounded backoff (the pod's next
snapshot starts it again after that).
"""

from __future__ import annotations

import asyncio
import logging
import time
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from headstart.api import names
from headstart.api.progress import ProgressSnapshot

from .kube import ApiError
from .lookup import first, owned_by
from .tokens import Identity

log = logging.getLogger("headstart.operator.intake")
WRITE_RETRIES = 5
WRITE_BACKOFF = 1.0
#: After the operator starts, kopf's watches fill its indexes: a job or pod not seen yet is "try again" (503)
#: for this long, not "no such job" (404).
WARM_UP_SECONDS = 60.0


@dataclass(frozen=True)
class Acceptance:
    """The endpoint's answer: an HTTP status and a JSON body."""

    status: int
    body: dict[str, Any] = field(default_factory=dict)


@dataclass
class Taken:
    """The newest snapshot of one job."""

    uid: str
    """The FineTuneJob's uid (a job re-created under the same name starts afresh)."""
    order: tuple[str, int]
    snapshot: ProgressSnapshot
    written: bool = False


class Intake:
    """Takes snapshots for the reconciler (its indexes, locks and status writes)."""

    def __init__(self, reconciler: Any, clock: Any = time.monotonic):
        self.reconciler, self.clock = reconciler, clock
        self.latest: dict[tuple[str, str], Taken] = {}
        self.writers: dict[tuple[str, str], asyncio.Task] = {}
        self.started = clock()

    def warming_up(self) -> bool:
        """Whether kopf may not have listed every object yet (just after the operator started)."""
        return self.clock() - self.started < WARM_UP_SECONDS

    def _training_pod(self, namespace: str, name: str, body: dict[str, Any],
                      identity: Identity) -> tuple[dict[str, Any] | None, bool]:
        """(the pod the token is bound to, if it is one of this job's training pods; whether the operator
        knows any training pod of this job at all)."""
        label = (namespace, names.label_value(name))
        indexes = self.reconciler.indexes
        job_obj = first(indexes.get("job_index"), label)
        if job_obj is None or not owned_by(job_obj, body["metadata"]["uid"]):
            return None, False
        pod_index = indexes.get("pod_index")
        pods = list(pod_index[label]) if pod_index is not None and label in pod_index else []
        for pod in pods:
            meta = pod.get("metadata") or {}
            if meta.get("uid") == identity.pod_uid and meta.get("name") == identity.pod_name and \
                    owned_by(pod, job_obj["metadata"]["uid"]):
                return pod, True
        return None, bool(pods)

    def accept(self, namespace: str, name: str, identity: Identity, snapshot: ProgressSnapshot) -> Acceptance:
        """Take ``snapshot`` from the pod ``identity`` names, for FineTuneJob ``namespace/name``."""
        body = first(self.reconciler.indexes.get("ftj_index"), (namespace, names.label_value(name)))
        if body is None or body["metadata"]["name"] != name:
            if self.warming_up():
                return Acceptance(503, {"error": f"FineTuneJob {namespace}/{name} is not known yet; try again"})
            return Acceptance(404, {"error": f"no FineTuneJob {namespace}/{name}"})
        if identity.namespace != namespace or not identity.pod_name:
            what = f"pod {identity.pod_name}" if identity.pod_name else "no pod"
            return Acceptance(403, {"error": f"the token ({identity.username}, bound to {what}) is not of a "
                                             f"training pod of FineTuneJob {namespace}/{name}"})
        pod, known = self._training_pod(namespace, name, body, identity)
        if pod is None:
            if not known:
                return Acceptance(503, {"error": f"no training pod of {namespace}/{name} is known yet; try again"})
            return Acceptance(403, {"error": f"pod {identity.pod_name} is not a training pod of FineTuneJob "
                                             f"{namespace}/{name}"})
        key, uid = (namespace, name), body["metadata"]["uid"]
        order = (pod["metadata"].get("creationTimestamp") or "", snapshot.seq)
        taken = self.latest.get(key)
        if taken is not None and taken.uid == uid and order <= taken.order:
            return Acceptance(200, {"accepted": False, "reason": "an older snapshot than one already taken"})
        self.latest[key] = Taken(uid, order, snapshot)
        if key not in self.writers:
            self.writers[key] = asyncio.get_running_loop().create_task(self._write(key))
        return Acceptance(200, {"accepted": True})

    async def _write(self, key: tuple[str, str]) -> None:
        try:
            failures = 0
            while (taken := self.latest.get(key)) is not None and not taken.written:
                try:
                    await self._write_one(key, taken)
                    failures = 0
                except (ApiError, OSError, aiohttp.ClientError, TimeoutError) as exc:
                    failures += 1
                    self.reconciler.metrics.error("progress_write")
                    if failures > WRITE_RETRIES:
                        log.warning("progress of %s/%s not written: %s (its next snapshot tries again)",
                                    *key, exc)
                        return
                    await asyncio.sleep(WRITE_BACKOFF * 2 ** (failures - 1))
        finally:
            self.writers.pop(key, None)

    async def _write_one(self, key: tuple[str, str], taken: Taken) -> None:
        body = first(self.reconciler.indexes.get("ftj_index"), (key[0], names.label_value(key[1])))
        if body is None or body["metadata"]["uid"] != taken.uid:
            taken.written = True  # deleted, or re-created: nothing to write
            return
        async with self.reconciler.locks[key]:
            patch = taken.snapshot.status_patch(self.reconciler.current_status(body))
            if patch:
                await self.reconciler.patch_status(body, patch, writer="progress")
        taken.written = True

    def forget(self, namespace: str, name: str) -> None:
        self.latest.pop((namespace, name), None)
