"""What the training Job and its pods say, in one phase, reason and message (pure: dicts in, a value out).

The reasons are the :class:`headstart.api.reasons.Reason` words a user (and ``headstart why``) can act on:
InsufficientGPU, NoMatchingNode, UntoleratedTaint, MissingVolume, ImagePullError, QuotaExceeded, QueuedByKueue,
OOMKilled, DeadlineExceeded, and for a trainer exit code of the permanent kind the reason
``headstart.api.exitcodes`` gives it.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from headstart.api import names
from headstart.api.exitcodes import failure
from headstart.api.reasons import Phase, Reason

IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


@dataclass(frozen=True)
class Observation:
    phase: Phase
    reason: Reason
    message: str
    start_time: str | None = None
    completion_time: str | None = None
    model: dict[str, Any] | None = None
    """status.model from the container's termination message (when the trainer's own patch was lost)."""
    final: dict[str, Any] | None = None
    """The termination message's stages and metrics (``{"stages": [...], "metrics": {...}}``), the trainer's
    final word for when its last snapshot was lost."""


def _condition(obj: dict[str, Any] | None, kind: str) -> dict[str, Any] | None:
    for cond in ((obj or {}).get("status") or {}).get("conditions") or []:
        if cond.get("type") == kind and cond.get("status") == "True":
            return cond
    return None


def _container(pod: dict[str, Any]) -> dict[str, Any]:
    for status in (pod.get("status") or {}).get("containerStatuses") or []:
        if status.get("name") == names.CONTAINER_NAME:
            return status
    return {}


def _terminated(pod: dict[str, Any]) -> dict[str, Any] | None:
    status = _container(pod)
    return (status.get("state") or {}).get("terminated") or (status.get("lastState") or {}).get("terminated")


def _final_word(pods: list[dict[str, Any]]) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """(model, {stages, metrics}) of the newest pod whose termination message names a model, else (None, None)."""
    for pod in sorted(pods, key=_created, reverse=True):
        result = termination_result(pod)
        found = result.get("model")
        if isinstance(found, dict) and found.get("uri"):
            return found, {key: result[key] for key in ("stages", "metrics") if key in result}
    return None, None


def termination_result(pod: dict[str, Any]) -> dict[str, Any]:
    """The trainer's JSON termination message, or {"log": text} for a log tail, or {}."""
    text = ((_terminated(pod) or {}).get("message") or "").strip()
    if not text:
        return {}
    try:
        value = json.loads(text)
    except ValueError:
        lines = [line for line in text.splitlines() if line.strip()]
        return {"log": lines[-1][:1024] if lines else ""}
    return value if isinstance(value, dict) else {}


def _created(obj: dict[str, Any]) -> str:
    return (obj.get("metadata") or {}).get("creationTimestamp") or ""


def _newest(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    return max(pods, key=_created) if pods else None


def explain_failure(pod: dict[str, Any] | None) -> tuple[Reason, str]:
    """(reason, message) of a failed training pod."""
    if pod is None:
        return Reason.TRAINER_FAILED, "the training pod failed"
    term = _terminated(pod) or {}
    code = term.get("exitCode")
    result = termination_result(pod)
    said = result.get("error") or result.get("log") or ""
    if term.get("reason") == "OOMKilled":
        return Reason.OOM_KILLED, ("the trainer ran out of memory (OOMKilled); raise spec.resources.memory or "
                                   "lower spec.dataset.batchSize")
    reason_of_pod = (pod.get("status") or {}).get("reason")
    if code is None and reason_of_pod:
        said = (pod.get("status") or {}).get("message") or ""
        return Reason.TRAINER_FAILED, f"the pod failed: {reason_of_pod}" + (f": {said}" if said else "")
    return failure(code if isinstance(code, int) else None, said)


def explain_pending(pod: dict[str, Any]) -> tuple[Reason, str]:
    """(reason, message) of a pod that does not run yet."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            text = cond.get("message") or "the scheduler found no node"
            if cond.get("reason") == "SchedulingGated":
                return Reason.SCHEDULING_GATED, f"waiting for scheduling gates to be lifted: {text}"
            if "persistentvolumeclaim" in text.lower():
                return Reason.MISSING_VOLUME, f"a PersistentVolumeClaim the job uses is missing or not bound: {text}"
            if "Insufficient nvidia.com/gpu" in text:
                return Reason.INSUFFICIENT_GPU, f"waiting for free nvidia.com/gpu: {text}"
            if "Insufficient" in text:
                return Reason.INSUFFICIENT_RESOURCES, f"waiting for cpu or memory: {text}"
            if "node affinity/selector" in text:
                return Reason.NO_MATCHING_NODE, f"no node matches spec.scheduling.nodeSelector: {text}"
            if "untolerated taint" in text:
                return Reason.UNTOLERATED_TAINT, f"every node has a taint the job does not tolerate: {text}"
            return Reason.UNSCHEDULABLE, text
    waiting = (_container(pod).get("state") or {}).get("waiting") or {}
    if waiting.get("reason") in IMAGE_REASONS:
        image = _container(pod).get("image") or "the trainer image"
        return Reason.IMAGE_PULL_ERROR, f"cannot pull {image}: {waiting.get('reason')}: {waiting.get('message') or ''}"
    if waiting.get("reason") in ("CreateContainerConfigError", "CreateContainerError"):
        return Reason.CONTAINER_CONFIG_ERROR, f"{waiting.get('reason')}: {waiting.get('message') or ''}".strip()
    if (pod.get("spec") or {}).get("nodeName"):
        return Reason.CONTAINER_CREATING, f"pod {pod['metadata']['name']} is starting on {pod['spec']['nodeName']}"
    return Reason.SCHEDULING, f"pod {pod['metadata']['name']} waits for the scheduler"


def explain_no_pod(failed_create: str | None) -> tuple[Reason, str]:
    if failed_create:
        if "exceeded quota" in failed_create or "forbidden: exceeded" in failed_create:
            return Reason.QUOTA_EXCEEDED, f"the namespace's ResourceQuota refuses the training pod: {failed_create}"
        return Reason.POD_CREATION_FAILED, f"the Job controller cannot create the training pod: {failed_create}"
    return Reason.JOB_CREATED, "the training Job is created; waiting for its pod"


def lost_node(pod: dict[str, Any], nodes: dict[str, dict[str, Any]] | None) -> dict[str, Any] | None:
    """The node of ``pod`` when that node stopped answering (its Ready condition not True), else None."""
    node = (pod.get("spec") or {}).get("nodeName")
    seen = (nodes or {}).get(node) if node else None
    return seen if seen is not None and seen.get("ready") != "True" else None


def explain_lost(pod: dict[str, Any], node: dict[str, Any], start: str | None, retry: str) -> Observation:
    name, where = pod["metadata"]["name"], (pod.get("spec") or {}).get("nodeName")
    since = f" since {node['since']}" if node.get("since") else ""
    return Observation(Phase.RUNNING, Reason.NODE_LOST,
                       f"node {where} stopped answering{since} (Ready {node.get('ready') or 'Unknown'}); pod {name} "
                       "stays until it is deleted or the node is tainted out of service, then the job resumes "
                       f"from its checkpoint{retry}", start)


def observe(job: dict[str, Any] | None, pods: list[dict[str, Any]], *, user_suspend: bool,
            failed_create: str | None = None, nodes: dict[str, dict[str, Any]] | None = None) -> Observation:
    """Phase, reason and message of a FineTuneJob from its Job and that Job's pods.

    ``user_suspend`` is spec.runPolicy.suspend: a Job suspended without it was suspended by a queue
    (Kueue), which is waiting, not an error. ``failed_create`` is the last FailedCreate event of the Job.
    ``nodes`` maps a node's name to its readiness ({"ready": "True|False|Unknown", "since": time}): a pod on
    a node that stopped answering is explained as such."""
    if job is None:
        return Observation(Phase.PENDING, Reason.CREATING, "creating the training Job")
    jstatus = job.get("status") or {}
    start, done = jstatus.get("startTime"), jstatus.get("completionTime")
    newest = _newest(pods)
    model, final = _final_word(pods)
    if _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet"):
        return Observation(Phase.SUCCEEDED, Reason.SUCCEEDED, "the model is written", start, done, model, final)
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed:
        failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        last = _newest(failed_pods)
        when = failed.get("lastTransitionTime") or done
        if failed.get("reason") == "DeadlineExceeded":
            limit = (job.get("spec") or {}).get("activeDeadlineSeconds")
            return Observation(Phase.FAILED, Reason.DEADLINE_EXCEEDED,
                               f"ran longer than spec.runPolicy.activeDeadlineSeconds ({limit} s)", start, when)
        reason, message = explain_failure(last)
        if failed.get("reason") == "BackoffLimitExceeded":
            tries = max(jstatus.get("failed") or 0, len(failed_pods))  # the counter may trail the condition
            message = f"{message} (gave up after {tries} attempt{'s' if tries != 1 else ''})"
        return Observation(Phase.FAILED, reason, message, start, when)
    if (job.get("spec") or {}).get("suspend"):
        if user_suspend:
            return Observation(Phase.SUSPENDED, Reason.SUSPENDED, "suspended by spec.runPolicy.suspend", start)
        queue = ((job.get("metadata") or {}).get("labels") or {}).get(names.LABEL_KUEUE_QUEUE)
        where = f"Kueue queue {queue!r}" if queue else "its queue"
        return Observation(Phase.PENDING, Reason.QUEUED_BY_KUEUE, f"waiting in {where} for admission", start)
    retry = ""
    if jstatus.get("failed"):
        reason, message = explain_failure(_newest([p for p in pods if p["status"].get("phase") == "Failed"]))
        retry = f" (retry {jstatus['failed']} after {reason}: {message})"
    unfinished = [p for p in pods if (p.get("status") or {}).get("phase") in ("Pending", "Running")]
    stranded = [(p, lost_node(p, nodes)) for p in unfinished]
    stranded = [(p, node) for p, node in stranded if node is not None]
    if stranded:
        pod, node = max(stranded, key=lambda pair: _created(pair[0]))
        return explain_lost(pod, node, start, retry)
    live = [p for p in unfinished if not (p.get("metadata") or {}).get("deletionTimestamp")]
    running = [p for p in live if p["status"].get("phase") == "Running"]
    if running:
        pod = _newest(running)
        return Observation(Phase.RUNNING, Reason.TRAINING, f"training in pod {pod['metadata']['name']} on "
                           f"{pod['spec'].get('nodeName')}{retry}", start)
    if live:
        reason, message = explain_pending(_newest(live))
        return Observation(Phase.PENDING, reason, message + retry, start)
    if newest is not None and newest["status"].get("phase") == "Succeeded":
        return Observation(Phase.RUNNING, Reason.FINISHING, "the trainer finished; waiting for the Job to complete",
                           start)
    reason, message = explain_no_pod(failed_create)
    return Observation(Phase.PENDING, reason, message + retry, start)
