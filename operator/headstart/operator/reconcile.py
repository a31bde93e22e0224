"""Reconciling one FineTuneJob: check the spec, wait for an upstream job, create the training Job, report.

Level-triggered and idempotent: every call looks at what exists (kopf's in-memory indexes of the
FineTuneJobs, training Jobs and pods, fed by its watches) and makes the cluster match; creating the Job
when it exists is a 409 and counts as success. The Job is the only object the operator creates. One
asyncio lock per FineTuneJob keeps two writers of the same job's status from interleaving; the operator is
the only writer of status (its own fields from what it observes, the trainer's from the progress snapshots
the pod posts: :mod:`.intake`).
"""

from __future__ import annotations

import asyncio
import collections
import logging
import time
from dataclasses import replace
from typing import Any

import kopf
from pydantic import ValidationError

from headstart.api import names
from headstart.api.checks import fields_at
from headstart.api.errors import problems_from
from headstart.api.job import API_VERSION, KIND, FineTuneJob, manifest
from headstart.api.progress import TRAINER_FIELDS
from headstart.api.reasons import NOTHING_CREATED, TERMINAL_PHASES, Phase, Reason
from headstart.api.uris import redact
from headstart.api.verdict import VERDICT_FIELDS, Verdict, needs_patch, status_patch

from . import builders, queueing, sharing
from .config import TrainerConfig
from .intake import Intake
from .kube import ApiError, Kube, path
from .lookup import first, ftj_key, owned_by, values
from .metrics import Metrics
from .observe import observe

#: The status fields this operator writes: all of them.
WRITTEN_FIELDS = frozenset(VERDICT_FIELDS) | frozenset(TRAINER_FIELDS)
REFUSAL = ("spec changed after the training Job was created; it goes on with the spec it started with "
           "(delete and re-create the FineTuneJob to train with the new spec)")
log = logging.getLogger("headstart.operator")
RETRYABLE = {408, 429, 500, 502, 503, 504}
NOTHING_CREATED_WORDS = tuple(r.value for r in NOTHING_CREATED)


def _nodes(indexes: dict[str, Any], pods: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """The readiness of the nodes ``pods`` are on (kopf's node index)."""
    index = indexes.get("node_index")
    wanted = {(p.get("spec") or {}).get("nodeName") for p in pods} - {None}
    return {node: value for node in wanted if index is not None and node in index
            for value in index[node]}


def parse(body: dict[str, Any]) -> tuple[FineTuneJob | None, str]:
    """The job as the API models read it, or None and a one-line reason naming the fields."""
    meta = body["metadata"]
    doc = manifest(meta["name"], meta["namespace"], body.get("spec") or {})
    try:
        return FineTuneJob.model_validate(doc, context={"target": "cluster"}), ""
    except ValidationError as exc:
        problems = problems_from(exc, fields_at)
        return None, "; ".join(p.render() for p in problems[:5])


class Reconciler:
    def __init__(self, kube: Kube, trainer: TrainerConfig, metrics: Metrics):
        self.kube, self.trainer, self.metrics = kube, trainer, metrics
        self.locks: dict[tuple[str, str], asyncio.Lock] = collections.defaultdict(asyncio.Lock)
        self.written: dict[tuple[str, str], tuple[str, dict[str, Any]]] = {}
        """(uid, status) this operator last wrote, per job: newer than the watch may have shown yet."""
        self.failed_create: dict[tuple[str, str], str] = {}
        """Last FailedCreate event message per (namespace, training Job name)."""
        self.indexes: dict[str, Any] = {}
        """kopf's indexes (live views), for the progress endpoint, which runs outside kopf's handlers."""
        self.intake = Intake(self)
        self.kueue = queueing.KueueView()
        """Kueue's Workloads and LocalQueues, as the watches show them (:mod:`.queueing`)."""

    # -- entry points ----------------------------------------------------------------------------------

    async def ensure(self, body: dict[str, Any], indexes: dict[str, Any]) -> None:
        """The create/resume/update path: everything a FineTuneJob needs, then its status."""
        meta = body["metadata"]
        began = time.monotonic()
        async with self.locks[(meta["namespace"], meta["name"])]:
            try:
                await self._ensure(body, indexes)
            finally:
                self.metrics.reconcile_seconds.observe(time.monotonic() - began)

    async def refresh(self, namespace: str, label: str, indexes: dict[str, Any]) -> None:
        """A child changed: recompute the status of the FineTuneJob it belongs to."""
        body = first(indexes.get("ftj_index"), (namespace, label))
        if body is None:
            return
        async with self.locks[(namespace, body["metadata"]["name"])]:
            job_obj = first(indexes.get("job_index"), (namespace, label))
            if job_obj is None or not owned_by(job_obj, body["metadata"]["uid"]):
                return  # nothing created yet (or an earlier job's, going): ensure() reports
            if not self.current_status(body).get("trainingJob"):
                return  # ensure() has not finished this job's children: it names the Job once they all exist
            await self._report(body, job_obj, indexes)

    @staticmethod
    def jobs_on_node(node: str, indexes: dict[str, Any]) -> set[tuple[str, str]]:
        """(namespace, job label) of every job with a pod on ``node``."""
        pods = indexes.get("pod_index")
        if pods is None:
            return set()
        return {key for key in list(pods) for pod in pods[key]
                if (pod.get("spec") or {}).get("nodeName") == node}

    @staticmethod
    def has_downstream(namespace: str, name: str, indexes: dict[str, Any]) -> bool:
        waiting = indexes.get("ftj_downstream")
        return waiting is not None and (namespace, name) in waiting

    async def upstream_changed(self, namespace: str, name: str, indexes: dict[str, Any]) -> None:
        """A job that others start from changed (appeared, progressed, finished, went): reconcile the jobs
        waiting for it (they start when it succeeds; their message says what it is doing meanwhile)."""
        if not self.has_downstream(namespace, name, indexes):
            return
        for down_name in list(indexes["ftj_downstream"][(namespace, name)]):
            down = first(indexes.get("ftj_index"), ftj_key(namespace, down_name))
            if down is not None and (down.get("status") or {}).get("reason") == "WaitingForUpstream":
                await self.ensure(down, indexes)

    def forget(self, namespace: str, name: str) -> None:
        """A FineTuneJob was deleted: drop what this operator kept about it."""
        self.written.pop((namespace, name), None)
        self.intake.forget(namespace, name)
        self.locks.pop((namespace, name), None)
        self.metrics.set_phase(namespace, name, None)

    # -- the steps -------------------------------------------------------------------------------------

    async def _ensure(self, body: dict[str, Any], indexes: dict[str, Any]) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        job, problem = parse(body)
        if job is None:
            self.metrics.error("invalid_spec")
            await self._write(body, Verdict(Phase.FAILED, Reason.INVALID_SPEC, f"the spec cannot run: {problem}"))
            return
        job_obj = first(indexes.get("job_index"), ftj_key(ns, name))
        if job_obj is not None and not owned_by(job_obj, meta["uid"]):
            raise kopf.TemporaryError("the training Job of an earlier FineTuneJob with this name is still being "
                                      "deleted", delay=2)
        status = self.current_status(body)
        if job_obj is None and status.get("phase") in TERMINAL_PHASES and (
                status.get("trainingJob") or status.get("reason") not in NOTHING_CREATED_WORDS):
            return  # finished: only its children may expire; it never trains again, whatever is re-applied
        if job_obj is None and job.spec.scheduling.queue_name and job.spec.run_policy.suspend:
            await self._write(body, queueing.NOT_QUEUED)  # nothing for Kueue to admit until it is resumed
            return
        if job_obj is None:
            from_jobs = await self._upstream(body, job, indexes)
            if from_jobs is None or await self._output_taken(body, indexes):
                return
            job_obj = await self._create_job(body, job, from_jobs)
            if job_obj is None:
                return
            kopf.event(self._ref(body), type="Normal", reason="Created",
                       message=f"created training Job {job_obj['metadata']['name']}")
        elif self._spec_matches(body, job_obj):
            job_obj = await self._apply_suspend(job, job_obj)
        await self._report(body, job_obj, indexes)

    async def _upstream(self, body: dict[str, Any], job: FineTuneJob,
                        indexes: dict[str, Any]) -> dict[str, str] | None:
        """{fromJob: its model URI}, {} without fromJob, or None when the job must wait or fail."""
        upstream = job.spec.base_model.from_job
        if not upstream:
            return {}
        up = first(indexes.get("ftj_index"), ftj_key(body["metadata"]["namespace"], upstream))
        up_status = (up or {}).get("status") or {}
        phase = up_status.get("phase")
        if phase == "Succeeded":
            # where its model is: status says (with any credentials redacted: then its spec's output, unredacted)
            uri = (up_status.get("model") or {}).get("uri")
            if not uri or uri != redact(uri) or "***@" in uri:
                uri = ((up.get("spec") or {}).get("output") or {}).get("uri") or uri
            if uri:
                return {upstream: uri}
        if phase == "Failed":
            await self._write(body, Verdict(
                Phase.FAILED, Reason.UPSTREAM_FAILED,
                f"baseModel.fromJob {upstream!r} failed ({up_status.get('reason')}: {up_status.get('message')}); "
                "nothing was created"))
            return None
        why = "does not exist yet" if up is None else f"is {phase or 'new'}"
        await self._write(body, Verdict(
            Phase.PENDING, Reason.WAITING_FOR_UPSTREAM,
            f"waiting for FineTuneJob {upstream!r} (baseModel.fromJob) to succeed: it {why}"))
        return None

    def _active(self, other: dict[str, Any], indexes: dict[str, Any]) -> bool:
        """Whether FineTuneJob ``other`` has a training Job that has not finished."""
        meta = other["metadata"]
        job_obj = first(indexes.get("job_index"), ftj_key(meta["namespace"], meta["name"]))
        return job_obj is not None and owned_by(job_obj, meta["uid"]) and not self._finished(job_obj)

    async def _output_taken(self, body: dict[str, Any], indexes: dict[str, Any]) -> bool:
        """Whether another job writes (or writes first) this job's output: then it waits, OutputInUse."""
        writer = sharing.writer_of(body, values(indexes.get("ftj_index")), lambda other: self._active(other, indexes))
        if writer is None:
            return False
        meta, phase = writer["metadata"], (writer.get("status") or {}).get("phase") or "new"
        uri = body["spec"]["output"]["uri"]
        await self._write(body, Verdict(Phase.PENDING, Reason.OUTPUT_IN_USE,
                                        f"spec.output.uri {uri} is written by FineTuneJob {meta['namespace']}/"
                                        f"{meta['name']} ({phase}); this job starts when that one ends"))
        return True

    async def output_freed(self, ended: dict[str, Any], indexes: dict[str, Any]) -> None:
        """A job ended or went: the jobs waiting for its output (OutputInUse) are looked at again."""
        key = sharing.output_key(ended["metadata"].get("namespace") or "",
                                 ((ended.get("spec") or {}).get("output") or {}).get("uri"))
        if key is None:
            return
        for waiting in values(indexes.get("ftj_index")):
            status, meta = waiting.get("status") or {}, waiting["metadata"]
            if status.get("reason") == Reason.OUTPUT_IN_USE.value and meta["uid"] != ended["metadata"].get("uid") \
                    and sharing.output_key(meta["namespace"], waiting["spec"]["output"]["uri"]) == key:
                await self.ensure(waiting, indexes)

    async def _create_job(self, body: dict[str, Any], job: FineTuneJob,
                          from_jobs: dict[str, str]) -> dict[str, Any] | None:
        """The training Job, the one child: everything its pod needs travels inside it."""
        ns = body["metadata"]["namespace"]
        try:
            return await self._create("Job", ns, builders.build_job(body, job, self.trainer, from_jobs))
        except ApiError as exc:
            self.metrics.error(f"api_{exc.status}")
            if exc.status in RETRYABLE or exc.status == 403:  # 403: the operator's RBAC, not the user's spec
                await self._write(body, Verdict(Phase.PENDING, Reason.CREATING,
                                                f"creating the training Job failed, retrying: {exc.message}"))
                raise
            await self._write(body, Verdict(Phase.FAILED, Reason.JOB_REJECTED,
                                            f"the API server refused the training Job: {exc.message}"))
            return None

    async def _create(self, kind: str, ns: str, manifest: dict[str, Any]) -> Any:
        """Create the child; if it exists (409), return the existing one, which must be this job's."""
        try:
            created = await self.kube.post(path(kind, ns), manifest)
            self.metrics.created.labels(kind=kind).inc()
            return created
        except ApiError as exc:
            if exc.status != 409:
                raise
        existing = await self.kube.get(path(kind, ns, manifest["metadata"]["name"]))
        if not owned_by(existing, manifest["metadata"]["ownerReferences"][0]["uid"]):
            # Left by an earlier FineTuneJob of the same name: the garbage collector is deleting it.
            raise kopf.TemporaryError(f"{kind} {existing['metadata']['name']} of an earlier FineTuneJob with this "
                                      "name is still being deleted", delay=2)
        return existing

    def _spec_matches(self, body: dict[str, Any], job_obj: dict[str, Any]) -> bool:
        made_from = (job_obj["metadata"].get("annotations") or {}).get(names.ANNOTATION_SPEC_HASH)
        return made_from == builders.spec_hash(body.get("spec") or {})

    async def _apply_suspend(self, job: FineTuneJob, job_obj: dict[str, Any]) -> dict[str, Any]:
        """spec.runPolicy.suspend onto the Job. A queued Job's suspend is Kueue's: its Workload is held instead."""
        want = job.spec.run_policy.suspend
        if job.spec.scheduling.queue_name and (job_obj["metadata"].get("labels") or {}).get(names.LABEL_KUEUE_QUEUE):
            if not self._finished(job_obj):
                await queueing.hold(self.kube, self.kueue, job_obj, want)
            return job_obj
        have = bool((job_obj.get("spec") or {}).get("suspend"))
        if want == have or (not want and job.spec.scheduling.queue_name):
            return job_obj
        if self._finished(job_obj):
            return job_obj
        meta = job_obj["metadata"]
        return await self.kube.patch(path("Job", meta["namespace"], meta["name"]), {"spec": {"suspend": want}})

    @staticmethod
    def _finished(job_obj: dict[str, Any]) -> bool:
        return any(c.get("type") in ("Complete", "Failed") and c.get("status") == "True"
                   for c in (job_obj.get("status") or {}).get("conditions") or [])

    async def _report(self, body: dict[str, Any], job_obj: dict[str, Any], indexes: dict[str, Any]) -> None:
        ns, name = body["metadata"]["namespace"], body["metadata"]["name"]
        label = names.label_value(name)
        pods_index = indexes.get("pod_index")
        pods = list(pods_index[(ns, label)]) if pods_index is not None and (ns, label) in pods_index else []
        user_suspend = bool(((body.get("spec") or {}).get("runPolicy") or {}).get("suspend"))
        seen = observe(job_obj, pods, user_suspend=user_suspend,
                       failed_create=self.failed_create.get((ns, job_obj["metadata"]["name"])),
                       nodes=_nodes(indexes, pods))
        seen = queueing.observe_queued(self.kueue, body, job_obj, seen)
        verdict = Verdict(seen.phase, seen.reason, seen.message, created=True,
                          training_job=job_obj["metadata"]["name"], start_time=seen.start_time,
                          completion_time=seen.completion_time, model=seen.model, final=seen.final)
        old = self.current_status(body)
        kept = Reason.lookup(old.get("reason"))
        if old.get("phase") in TERMINAL_PHASES and old.get("phase") == verdict.phase.value and kept is not None:
            # Finished is final: the pods that explained it may go (TTL, garbage collection), the reason stays.
            message = old.get("message") or ""
            message = message[len(REFUSAL) + 2:] if message.startswith(REFUSAL + "; ") else message
            verdict = replace(verdict, reason=kept, message=message)
        if not self._spec_matches(body, job_obj):
            verdict = verdict.with_refusal(REFUSAL)
        await self._write(body, verdict)

    # -- status ----------------------------------------------------------------------------------------

    def current_status(self, body: dict[str, Any]) -> dict[str, Any]:
        """The job's status, with the fields as this operator last wrote them (newer than the watch may
        have shown yet)."""
        meta = body["metadata"]
        status = dict(body.get("status") or {})
        mine = self.written.get((meta["namespace"], meta["name"]))
        if mine is not None and mine[0] == meta["uid"]:
            status.update({k: v for k, v in mine[1].items() if k in WRITTEN_FIELDS})
        return status

    async def patch_status(self, body: dict[str, Any], patch: dict[str, Any], writer: str = "verdict") -> dict:
        """Write a JSON merge patch of the job's status (the one way status is written) and remember it."""
        self.metrics.status_writes.labels(writer=writer).inc()
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        updated = await self.kube.patch(path("FineTuneJob", ns, name, "status"), {"status": patch}, urgent=False)
        before = self.written.get((ns, name))
        merged = {**(before[1] if before and before[0] == meta["uid"] else {}), **patch}
        self.written[(ns, name)] = (meta["uid"], (updated or {}).get("status") or merged)
        return merged

    async def _write(self, body: dict[str, Any], verdict: Verdict) -> None:
        meta = body["metadata"]
        ns, name = meta["namespace"], meta["name"]
        old = self.current_status(body)
        patch = status_patch(old, verdict, meta.get("generation"))
        self.metrics.set_phase(ns, name, verdict.phase.value)
        if not needs_patch(old, patch):
            return
        await self.patch_status(body, patch)
        stalled_before = any(c.get("type") == "Stalled" and c.get("reason") == "SpecChangeRefused"
                             for c in old.get("conditions") or [])
        if verdict.refused_change and not stalled_before:
            kopf.event(self._ref(body), type="Warning", reason=Reason.SPEC_CHANGE_REFUSED.value,
                       message=verdict.refused_change)
        if (old.get("phase"), old.get("reason")) != (verdict.phase.value, verdict.reason.value):
            log.info("%s/%s: %s %s: %s", ns, name, verdict.phase, verdict.reason, verdict.message)
            # An event for every transition but the short steps in between (JobCreated: the Created event
            # says it; Scheduling, ContainerCreating), which would double the writes of a burst of new jobs.
            if verdict.reason.warning or not verdict.reason.quiet:
                kopf.event(self._ref(body), type="Warning" if verdict.reason.warning else "Normal",
                           reason=verdict.reason.value, message=f"{verdict.phase}: {verdict.message}"[:1024])

    @staticmethod
    def _ref(body: dict[str, Any]) -> dict[str, Any]:
        meta = body["metadata"]
        return {"apiVersion": API_VERSION, "kind": KIND,
                "metadata": {"name": meta["name"], "namespace": meta["namespace"], "uid": meta["uid"]}}
