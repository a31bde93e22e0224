"""What the training Job and its pods say, in one phase, reason and message (pure: dicts in, a value out).

The reasons are CamelCase words a user (and ``headstart why``) can act on: InsufficientGPU, NoMatchingNode,
UntoleratedTaint, MissingVolume, ImagePullError, QuotaExceeded, QueuedByKueue, OOMKilled, DeadlineExceeded, and for a
trainer exit code of the permanent kind, the error class it stands for.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from headstart.api import names
from headstart.trainer import errors

PERMANENT_REASONS = {
    errors.EXIT_SPEC: ("InvalidSpec", "the trainer rejected the spec"),
    errors.EXIT_NO_TENSORFLOW: ("BadImage", "the trainer image has no TensorFlow"),
    errors.EXIT_BASE_MODEL: ("BadBaseModel", "the base model cannot be used"),
    errors.EXIT_DATASET: ("BadDataset", "the dataset cannot be read"),
    errors.EXIT_OUTPUT_CONFLICT: ("OutputConflict", "the output holds another job's model"),
}
IMAGE_REASONS = ("ErrImagePull", "ImagePullBackOff", "InvalidImageName", "ErrImageNeverPull")


@dataclass(frozen=True)
class Observation:
    phase: str
    reason: str
    message: str
    start_time: str | None = None
    completion_time: str | None = None
    model: dict[str, Any] | None = None
    """status.model from the container's termination message (when the trainer's own patch was lost)."""


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


def explain_failure(pod: dict[str, Any] | None) -> tuple[str, str]:
    """(reason, message) of a failed training pod."""
    if pod is None:
        return "TrainerFailed", "the training pod failed"
    term = _terminated(pod) or {}
    code = term.get("exitCode")
    result = termination_result(pod)
    said = result.get("error") or result.get("log") or ""
    if term.get("reason") == "OOMKilled":
        return "OOMKilled", ("the trainer ran out of memory (OOMKilled); raise spec.resources.memory or lower "
                             "spec.dataset.batchSize")
    if code in PERMANENT_REASONS:
        reason, what = PERMANENT_REASONS[code]
        return reason, f"{what} (exit code {code}, not retried): {said}" if said else f"{what} (exit {code})"
    reason_of_pod = (pod.get("status") or {}).get("reason")
    if code is None and reason_of_pod:
        return reason_of_pod, (pod.get("status") or {}).get("message") or f"the pod failed: {reason_of_pod}"
    text = f"the trainer exited with code {code}"
    return "TrainerFailed", f"{text}: {said}" if said else text


def explain_pending(pod: dict[str, Any]) -> tuple[str, str]:
    """(reason, message) of a pod that does not run yet."""
    status = pod.get("status") or {}
    for cond in status.get("conditions") or []:
        if cond.get("type") == "PodScheduled" and cond.get("status") == "False":
            text = cond.get("message") or "the scheduler found no node"
            if cond.get("reason") == "SchedulingGated":
                return "SchedulingGated", f"waiting for scheduling gates to be lifted: {text}"
            if "persistentvolumeclaim" in text.lower():
                return "MissingVolume", f"a PersistentVolumeClaim the job uses is missing or not bound: {text}"
            if "Insufficient nvidia.com/gpu" in text:
                return "InsufficientGPU", f"waiting for free nvidia.com/gpu: {text}"
            if "Insufficient" in text:
                return "InsufficientResources", f"waiting for cpu or memory: {text}"
            if "node affinity/selector" in text:
                return "NoMatchingNode", f"no node matches spec.scheduling.nodeSelector: {text}"
            if "untolerated taint" in text:
                return "UntoleratedTaint", f"every node has a taint the job does not tolerate: {text}"
            return "Unschedulable", text
    waiting = (_container(pod).get("state") or {}).get("waiting") or {}
    if waiting.get("reason") in IMAGE_REASONS:
        image = _container(pod).get("image") or "the trainer image"
        return "ImagePullError", f"cannot pull {image}: {waiting.get('reason')}: {waiting.get('message') or ''}"
    if waiting.get("reason") in ("CreateContainerConfigError", "CreateContainerError"):
        return "ContainerConfigError", f"{waiting.get('reason')}: {waiting.get('message') or ''}".strip()
    if (pod.get("spec") or {}).get("nodeName"):
        return "ContainerCreating", f"pod {pod['metadata']['name']} is starting on {pod['spec']['nodeName']}"
    return "Scheduling", f"pod {pod['metadata']['name']} waits for the scheduler"


def explain_no_pod(failed_create: str | None) -> tuple[str, str]:
    if failed_create:
        if "exceeded quota" in failed_create or "forbidden: exceeded" in failed_create:
            return "QuotaExceeded", f"the namespace's ResourceQuota refuses the training pod: {failed_create}"
        return "PodCreationFailed", f"the Job controller cannot create the training pod: {failed_create}"
    return "JobCreated", "the training Job is created; waiting for its pod"


def observe(job: dict[str, Any] | None, pods: list[dict[str, Any]], *, user_suspend: bool,
            failed_create: str | None = None) -> Observation:
    """Phase, reason and message of a FineTuneJob from its Job and that Job's pods.

    ``user_suspend`` is spec.runPolicy.suspend: a Job suspended without it was suspended by a queue
    (Kueue), which is waiting, not an error. ``failed_create`` is the last FailedCreate event of the Job."""
    if job is None:
        return Observation("Pending", "Creating", "creating the training Job")
    jstatus = job.get("status") or {}
    start, done = jstatus.get("startTime"), jstatus.get("completionTime")
    newest = _newest(pods)
    model = None
    for pod in sorted(pods, key=_created, reverse=True):
        found = termination_result(pod).get("model")
        if isinstance(found, dict) and found.get("uri"):
            model = found
            break
    if _condition(job, "Complete") or _condition(job, "SuccessCriteriaMet"):
        return Observation("Succeeded", "Succeeded", "the model is written", start, done, model)
    failed = _condition(job, "Failed") or _condition(job, "FailureTarget")
    if failed:
        failed_pods = [p for p in pods if (p.get("status") or {}).get("phase") == "Failed"]
        last = _newest(failed_pods)
        when = failed.get("lastTransitionTime") or done
        if failed.get("reason") == "DeadlineExceeded":
            limit = (job.get("spec") or {}).get("activeDeadlineSeconds")
            return Observation("Failed", "DeadlineExceeded",
                               f"ran longer than spec.runPolicy.activeDeadlineSeconds ({limit} s)", start, when)
        reason, message = explain_failure(last)
        if failed.get("reason") == "BackoffLimitExceeded":
            tries = max(jstatus.get("failed") or 0, len(failed_pods))  # the counter may trail the condition
            message = f"{message} (gave up after {tries} attempt{'s' if tries != 1 else ''})"
        return Observation("Failed", reason, message, start, when)
    if (job.get("spec") or {}).get("suspend"):
        if user_suspend:
            return Observation("Suspended", "Suspended", "suspended by spec.runPolicy.suspend", start)
        queue = ((job.get("metadata") or {}).get("labels") or {}).get(names.LABEL_KUEUE_QUEUE)
        where = f"Kueue queue {queue!r}" if queue else "its queue"
        return Observation("Pending", "QueuedByKueue", f"waiting in {where} for admission", start)
    retry = ""
    if jstatus.get("failed"):
        reason, message = explain_failure(_newest([p for p in pods if p["status"].get("phase") == "Failed"]))
        retry = f" (retry {jstatus['failed']} after {reason}: {message})"
    live = [p for p in pods if (p.get("status") or {}).get("phase") in ("Pending", "Running")
            and not (p.get("metadata") or {}).get("deletionTimestamp")]
    running = [p for p in live if p["status"].get("phase") == "Running"]
    if running:
        pod = _newest(running)
        return Observation("Running", "Training", f"training in pod {pod['metadata']['name']} on "
                           f"{pod['spec'].get('nodeName')}{retry}", start)
    if live:
        reason, message = explain_pending(_newest(live))
        return Observation("Pending", reason, message + retry, start)
    if newest is not None and newest["status"].get("phase") == "Succeeded":
        return Observation("Running", "Finishing", "the trainer finished; waiting for the Job to complete", start)
    reason, message = explain_no_pod(failed_create)
    return Observation("Pending", reason, message + retry, start)
