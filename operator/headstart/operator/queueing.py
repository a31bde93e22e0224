"""Kueue: what its Workloads say about a queued training Job, and its own way to hold one (spec.active).

A FineTuneJob with ``spec.scheduling.queueName`` gets a training Job labelled ``kueue.x-k8s.io/queue-name``
and created suspended; Kueue owns that Job's ``suspend`` from then on: it makes a Workload for the Job
(owned by it), admits it when its ClusterQueue has the quota, and suspends the Job again to preempt it.
The operator never writes that field. It watches the Workloads and LocalQueues (kopf event handlers,
:func:`register`) into a :class:`KueueView`, and explains a suspended queued Job from them
(:func:`observe_queued`): its position in the ClusterQueue and what it waits for (Kueue's own message),
who preempted it, or that its LocalQueue does not exist. ``spec.runPolicy.suspend`` of a queued job is
Kueue's way: the Workload's ``spec.active`` false, true again on resume (:func:`hold`), and only a Workload
the operator deactivated itself is activated again (annotation :data:`HELD_BY`).

The view holds what kopf's watches of the Workloads and LocalQueues showed, in the operator's scope: with
``-n NS`` a ClusterQueue shared with other namespaces counts only the Workloads of those namespaces. Kueue's
API is discovered when the operator starts: install Kueue first, or restart the operator after.
"""

from __future__ import annotations

import logging
import re
from dataclasses import replace
from typing import Any

import kopf

from headstart.api import names
from headstart.api.reasons import Phase, Reason
from headstart.api.verdict import Verdict

from .kube import ApiError, Kube
from .observe import Observation

GROUP, VERSION = "kueue.x-k8s.io", "v1beta2"
WORKLOADS = (GROUP, VERSION, "workloads")
LOCALQUEUES = (GROUP, VERSION, "localqueues")
#: On a Workload the operator deactivated for spec.runPolicy.suspend (and so may activate again).
HELD_BY = "headstart.dev/held-by"
HELD_VALUE = "runPolicy.suspend"
_JOB_UID = re.compile(r"JobUID: ([^,;)\s]+)")
_UID = re.compile(r"\(UID: ([^,;)\s]+)")
_DUE_TO = re.compile(r"due to ([^;]+)")
log = logging.getLogger("headstart.operator")

Key = tuple[str, str]
#: A queued job suspended before its Job exists: nothing is created, so Kueue has nothing to admit.
NOT_QUEUED = Verdict(Phase.SUSPENDED, Reason.SUSPENDED, "suspended by spec.runPolicy.suspend before it was queued: "
                     "its Job is created (and queued) when it is resumed")


def _condition(wl: dict[str, Any], kind: str) -> dict[str, Any] | None:
    for cond in (wl.get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind:
            return cond
    return None


def _true(wl: dict[str, Any], kind: str) -> bool:
    return (_condition(wl, kind) or {}).get("status") == "True"


def _job_owner(meta: dict[str, Any]) -> dict[str, Any] | None:
    for ref in meta.get("ownerReferences") or []:
        if ref.get("kind") == "Job" and ref.get("apiVersion", "").startswith("batch/") and ref.get("controller"):
            return ref
    return None


def summary(body: Any) -> dict[str, Any]:
    """What the operator keeps of a Workload (its pod sets are left out)."""
    meta, spec = body.get("metadata") or {}, body.get("spec") or {}
    owner = _job_owner(meta) or {}
    return {"namespace": meta.get("namespace"), "name": meta.get("name"), "uid": meta.get("uid"),
            "created": meta.get("creationTimestamp") or "", "job": owner.get("name"), "job_uid": owner.get("uid"),
            "held": (meta.get("annotations") or {}).get(HELD_BY) == HELD_VALUE,
            "queue": spec.get("queueName"), "priority": spec.get("priority") or 0,
            "active": spec.get("active") is not False,
            "status": {"conditions": [dict(c) for c in (body.get("status") or {}).get("conditions") or []],
                       "admission": dict((body.get("status") or {}).get("admission") or {})}}


def pending(wl: dict[str, Any]) -> bool:
    """Waiting in its queue: active, no quota reserved, not finished."""
    return wl["active"] and not _true(wl, "QuotaReserved") and not _true(wl, "Finished")


class KueueView:
    """Workloads and LocalQueues as the watches showed them, and which FineTuneJob each Job belongs to."""

    def __init__(self) -> None:
        self.workloads: dict[Key, dict[str, Any]] = {}
        self.by_job: dict[Key, Key] = {}
        self.queues: dict[Key, str] = {}
        """(namespace, LocalQueue) -> its ClusterQueue."""
        self.jobs: dict[Key, tuple[str, str]] = {}
        """(namespace, training Job) -> (FineTuneJob label, FineTuneJob name), learnt when a job is reported."""
        self._orders: dict[str | None, dict[str, int]] = {}
        """Per ClusterQueue, each pending Workload's uid -> its place (0-based); dropped on every change."""

    def note_job(self, namespace: str, job_name: str, label: str, ftj_name: str) -> None:
        self.jobs[(namespace, job_name)] = (label, ftj_name)

    def workload_of(self, namespace: str, job_name: str) -> dict[str, Any] | None:
        key = self.by_job.get((namespace, job_name))
        return self.workloads.get(key) if key else None

    def cluster_queue(self, wl: dict[str, Any]) -> str | None:
        admitted = (wl["status"].get("admission") or {}).get("clusterQueue")
        return admitted or self.queues.get((wl["namespace"], wl["queue"]))

    def queue_order(self, wl: dict[str, Any]) -> tuple[int, int]:
        """(position, of how many) among the pending Workloads of its ClusterQueue, as Kueue orders them:
        higher priority first, then the older (its creation time), then by uid. 0 when it is not pending."""
        cq = self.cluster_queue(wl)
        order = self._orders.get(cq)
        if order is None:
            waiting = sorted((w for w in self.workloads.values() if pending(w) and self.cluster_queue(w) == cq),
                             key=lambda w: (-int(w["priority"]), w["created"], w["uid"] or ""))
            order = self._orders[cq] = {w["uid"]: place for place, w in enumerate(waiting)}
        place = order.get(wl["uid"])
        return (place + 1 if place is not None else 0), len(order)

    def by_uid(self, uid: str, job: bool = False) -> dict[str, Any] | None:
        field = "job_uid" if job else "uid"
        return next((w for w in self.workloads.values() if w[field] == uid), None)

    def jobs_waiting_in(self, cq: str | None) -> list[Key]:
        return [(w["namespace"], w["job"]) for w in self.workloads.values()
                if w["job"] and pending(w) and self.cluster_queue(w) == cq]

    def saw_workload(self, event: str | None, body: Any) -> list[Key]:
        """Take a Workload event; return the (namespace, Job) whose status may have changed: its own Job,
        and when the ClusterQueue's queue changed, every Job waiting there (their positions moved)."""
        wl = summary(body)
        key = (wl["namespace"], wl["name"])
        before = self.workloads.get(key)
        self._orders.clear()
        if event == "DELETED":
            self.workloads.pop(key, None)
            if wl["job"] and self.by_job.get((wl["namespace"], wl["job"])) == key:
                self.by_job.pop((wl["namespace"], wl["job"]))
        else:
            self.workloads[key] = wl
            if wl["job"]:
                self.by_job[(wl["namespace"], wl["job"])] = key
        changed = [(wl["namespace"], wl["job"])] if wl["job"] else []
        was = before is not None and pending(before)
        now = event != "DELETED" and pending(wl)
        if was != now or (now and before is not None and before["priority"] != wl["priority"]):
            changed += [k for k in self.jobs_waiting_in(self.cluster_queue(wl)) if k not in changed]
        return changed

    def saw_local_queue(self, event: str | None, body: Any) -> list[Key]:
        meta = body.get("metadata") or {}
        key = (meta.get("namespace"), meta.get("name"))
        self._orders.clear()
        if event == "DELETED":
            self.queues.pop(key, None)
        else:
            self.queues[key] = (body.get("spec") or {}).get("clusterQueue") or ""
        return [(w["namespace"], w["job"]) for w in self.workloads.values()
                if w["job"] and (w["namespace"], w["queue"]) == key]

    def ftj_of(self, namespace: str, job_name: str) -> tuple[str, str] | None:
        return self.jobs.get((namespace, job_name))


# -- status ------------------------------------------------------------------------------------------------


def _queued(job_obj: dict[str, Any]) -> str | None:
    return ((job_obj.get("metadata") or {}).get("labels") or {}).get(names.LABEL_KUEUE_QUEUE)


def _preemptor(view: KueueView, message: str) -> str:
    """Who a Kueue eviction message names: its FineTuneJob when it is one, else its Workload."""
    job_uid, uid = _JOB_UID.search(message), _UID.search(message)
    other = (view.by_uid(job_uid.group(1), job=True) if job_uid else None) or (
        view.by_uid(uid.group(1)) if uid else None)
    if other is None:
        return f"the workload with UID {uid.group(1)}" if uid else "a workload of higher priority"
    ftj = view.ftj_of(other["namespace"], other["job"]) if other["job"] else None
    who = (f"FineTuneJob {other['namespace']}/{ftj[1]}" if ftj else f"Workload {other['namespace']}/{other['name']}")
    return f"{who} (priority {other['priority']})"


def _place(view: KueueView, wl: dict[str, Any]) -> str:
    position, total = view.queue_order(wl)
    cq = view.cluster_queue(wl)
    where = f"ClusterQueue {cq!r} (LocalQueue {wl['queue']!r})" if cq else f"LocalQueue {wl['queue']!r}"
    return f"{where}, position {position} of {total}" if position else where


def explain_workload(view: KueueView, wl: dict[str, Any], start: str | None) -> Observation:
    """Phase, reason and message of a queued Job that Kueue holds suspended, from its Workload."""
    evicted = _condition(wl, "Evicted") or {}
    reserved = _condition(wl, "QuotaReserved") or {}
    said = (reserved.get("message") or "").strip()
    if evicted.get("status") == "True" and evicted.get("reason") == "Preempted":
        text = evicted.get("message") or ""
        due = _DUE_TO.search(text)
        why = f" due to {due.group(1).strip()}" if due else ""
        return Observation(Phase.SUSPENDED, Reason.PREEMPTED, f"preempted by {_preemptor(view, text)}{why}; "
                           f"waiting to be admitted again in {_place(view, wl)}", start)
    if reserved.get("status") != "True" and "LocalQueue" in said and "doesn't exist" in said:
        return Observation(Phase.PENDING, Reason.MISSING_LOCAL_QUEUE,
                           f"LocalQueue {wl['queue']!r} does not exist in namespace {wl['namespace']} "
                           f"(spec.scheduling.queueName); Kueue: {said}", start)
    if _true(wl, "QuotaReserved"):
        cq = view.cluster_queue(wl)
        return Observation(Phase.PENDING, Reason.QUEUED_BY_KUEUE,
                           f"admitted by ClusterQueue {cq!r}; Kueue is starting the training Job", start)
    if evicted.get("status") == "True":
        said = f"evicted ({evicted.get('reason')}): {evicted.get('message')}" + (f"; {said}" if said else "")
    waits = f": {said}" if said else ": waiting for Kueue to consider it"
    return Observation(Phase.PENDING, Reason.QUEUED_BY_KUEUE, f"queued in {_place(view, wl)}{waits}", start)


def observe_queued(view: KueueView, body: dict[str, Any], job_obj: dict[str, Any], seen: Observation) -> Observation:
    """``seen`` (from the Job and its pods), told from Kueue's Workload when Kueue holds the Job suspended."""
    queue = _queued(job_obj)
    meta = job_obj.get("metadata") or {}
    if not queue:
        return seen
    view.note_job(meta.get("namespace"), meta.get("name"), names.label_value(body["metadata"]["name"]),
                  body["metadata"]["name"])
    if not (job_obj.get("spec") or {}).get("suspend") or seen.phase not in (Phase.PENDING, Phase.SUSPENDED):
        return seen
    wl = view.workload_of(meta.get("namespace"), meta.get("name"))
    if seen.phase == Phase.SUSPENDED:  # spec.runPolicy.suspend
        held = f" (its Kueue Workload {wl['name']} is deactivated)" if wl and not wl["active"] else ""
        return replace(seen, message=seen.message + held)
    if wl is None:
        return replace(seen, message=f"waiting for Kueue to queue it in LocalQueue {queue!r} (no Workload yet: "
                                     "is Kueue running and managing batch/job?)")
    return explain_workload(view, wl, seen.start_time)


async def hold(kube: Kube, view: KueueView, job_obj: dict[str, Any], suspend: bool) -> None:
    """spec.runPolicy.suspend of a queued job, Kueue's way: its Workload's spec.active (never the Job's
    suspend, which is Kueue's). Raises kopf.TemporaryError while Kueue has not made the Workload yet."""
    meta = job_obj["metadata"]
    wl = view.workload_of(meta["namespace"], meta["name"])
    if wl is None:
        if suspend:
            raise kopf.TemporaryError(f"waiting for Kueue's Workload of Job {meta['name']} to hold it", delay=2)
        return
    if suspend == (not wl["active"]) or (not suspend and not wl["held"]):
        return  # as asked already, or deactivated by Kueue itself: not the operator's to activate
    annotations = {HELD_BY: HELD_VALUE if suspend else None}
    body = {"metadata": {"annotations": annotations}, "spec": {"active": not suspend}}
    url = f"/apis/{GROUP}/{VERSION}/namespaces/{meta['namespace']}/workloads/{wl['name']}"
    try:
        await kube.patch(url, body)
    except ApiError as exc:
        if exc.status != 404:
            raise
        raise kopf.TemporaryError(f"Workload {wl['name']} is gone; waiting for Kueue's new one", delay=2) from exc
    log.info("%s/%s: Workload %s %s", meta["namespace"], meta["name"], wl["name"],
             "deactivated (spec.runPolicy.suspend)" if suspend else "activated again")


def register(registry: kopf.OperatorRegistry, reconciler: Any, indexes_of: Any) -> None:
    """kopf event handlers of Kueue's Workloads and LocalQueues: the view, then the statuses they move."""

    async def refresh_all(keys: list[Key], kwargs: dict[str, Any]) -> None:
        for namespace, job_name in keys:
            ftj = reconciler.kueue.ftj_of(namespace, job_name)
            if ftj is None:
                continue  # not reported yet: its own first report reads the view
            try:
                await reconciler.refresh(namespace, ftj[0], indexes_of(kwargs))
            except (ApiError, TimeoutError, OSError) as exc:  # the next event retries
                reconciler.metrics.error(f"api_{exc.status}" if isinstance(exc, ApiError) else type(exc).__name__)
                log.warning("status of %s/%s not updated: %s", namespace, job_name, exc)

    @kopf.on.event(*WORKLOADS, registry=registry)
    async def workload_event(type: str | None, body: Any, **kwargs: Any) -> None:
        await refresh_all(reconciler.kueue.saw_workload(type, body), kwargs)

    @kopf.on.event(*LOCALQUEUES, registry=registry)
    async def local_queue_event(type: str | None, body: Any, **kwargs: Any) -> None:
        await refresh_all(reconciler.kueue.saw_local_queue(type, body), kwargs)
