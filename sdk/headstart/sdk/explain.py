"""`headstart why`: a job's state in plain words (pure: a job and its events in, lines out).

The operator sets ``status.reason`` to a CamelCase word (InsufficientGPU, QueuedByKueue, OOMKilled...);
this module turns it, the message, the conditions and recent Warning events into what is happening,
what went wrong and what to do next.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .results import JobEvent, StoredJob

#: reason -> what to do next.
ADVICE: dict[str, str] = {
    "InsufficientGPU": "no node has the GPUs free: wait for other jobs, lower spec.resources.gpus, or add GPU "
                       "nodes",
    "InsufficientResources": "no node has the CPU or memory asked for: lower spec.resources or add nodes",
    "NoMatchingNode": "no node carries the labels of spec.scheduling.nodeSelector: fix the selector or label a "
                      "node",
    "UntoleratedTaint": "the fitting nodes are tainted: add a toleration under spec.scheduling.tolerations",
    "MissingVolume": "a PersistentVolumeClaim the job uses does not exist or is not bound: create it (kubectl "
                     "get pvc)",
    "ImagePullError": "the trainer image cannot be pulled: check spec.image (or the operator's "
                      "--trainer-image) and the registry credentials",
    "ContainerConfigError": "the pod cannot be configured: a Secret or ConfigMap it names is probably missing "
                            "(spec.env, spec.envFrom)",
    "QuotaExceeded": "the namespace's ResourceQuota is full: free some quota or ask for more",
    "QueuedByKueue": "Kueue holds the job in its queue until the ClusterQueue admits it (kubectl get "
                     "workloads)",
    "SchedulingGated": "a scheduling gate holds the pod (a queueing system usually lifts it)",
    "WaitingForUpstream": "it starts when the job named in spec.baseModel.fromJob has succeeded",
    "UpstreamFailed": "the job named in spec.baseModel.fromJob failed: fix and rerun it, then delete and "
                      "apply this one again",
    "Suspended": "spec.runPolicy.suspend is true: `headstart resume NAME` continues from the last checkpoint",
    "InvalidSpec": "the spec cannot run: fix what the message names (headstart validate FILE), delete the job "
                   "and submit it again",
    "BadBaseModel": "the base model cannot be used: check spec.baseModel (uri, cutAt, weights)",
    "BadDataset": "the dataset cannot be read: check spec.dataset (the path or name, the splits, the "
                  "volume)",
    "OutputConflict": "the output already holds another job's model: choose another spec.output.uri or set "
                      "spec.output.overwrite",
    "OOMKilled": "the trainer ran out of memory: raise spec.resources.memory or lower dataset.batchSize",
    "DeadlineExceeded": "it ran past spec.runPolicy.activeDeadlineSeconds: raise it, or train fewer epochs",
    "SpecChangeRefused": "a running job's spec cannot change: delete it and submit the new spec (it resumes "
                         "nothing: a new spec trains afresh)",
    "TrainerFailed": "the trainer failed: `headstart logs NAME` shows why",
    "BadImage": "the trainer image lacks TensorFlow: use the headstart trainer image",
}


@dataclass(frozen=True)
class Explanation:
    state: str
    """One line: the phase and what it means now."""
    details: list[str]
    """Progress, the model, the conditions that are not fine."""
    events: list[str]
    """Recent warnings (and the last few events)."""
    next_step: str | None


_COMMAND = re.compile(r"`(headstart (?!validate|init|run|crd)[^`]*)`")


def for_local(advice: str) -> str:
    """Advice for a job of this machine: every suggested `headstart ...` cluster command gets --local."""
    return _COMMAND.sub(lambda m: f"`{m.group(1)} --local`", advice)


def explain(job: StoredJob, events: list[JobEvent], recent: int = 5, local: bool = False) -> Explanation:
    """What ``job`` is doing, in words: its state, details, recent events and the next step (for a job of
    this machine, ``local``: its commands take --local)."""
    status = job.status
    phase = status.phase.value if status and status.phase else "Pending"
    reason = (status.reason if status else None) or ""
    message = (status.message if status else None) or ""
    words = {
        "Pending": "waiting to run",
        "Running": "training",
        "Succeeded": "done: the model is written",
        "Failed": "failed",
        "Suspended": "suspended",
    }[phase]
    state = f"{job.name} is {phase} ({words})" + (f": {reason}" if reason else "") + \
        (f": {message}" if message else "")
    details = []
    if status and status.stage:
        epoch = f", epoch {status.epoch}/{status.epochs}" if status.epoch is not None else ""
        details.append(f"stage {status.stage}{epoch}")
    if status and status.metrics:
        details.append("metrics: " + " ".join(f"{k}={v:.4g}" for k, v in sorted(status.metrics.items())))
    if status and status.model:
        details.append(f"model: {status.model.uri} (manifest sha256 {(status.model.sha256 or '')[:16]})")
    for cond in status.conditions if status else []:
        if cond.type == "Stalled" and cond.status == "True":
            details.append(f"stalled: {cond.reason}: {cond.message}")
    if status and status.training_job:
        details.append(f"training Job: {status.training_job}")
    details += [f"invalid spec: {problem}" for problem in getattr(job, "problems", ())]
    warnings = [e for e in events if e.type == "Warning"]
    chosen = warnings[-recent:] if warnings else events[-recent:]
    lines = [f"{e.time or '-'} {e.type} {e.reason} {e.object}: {e.message}" +
             (f" (x{e.count})" if e.count > 1 else "") for e in chosen]
    advice = ADVICE.get(reason)
    if advice is None and phase == "Failed":
        advice = ("`headstart logs NAME` shows the trainer's last lines; fix the cause, delete the job and submit "
                  "it again")
    if advice is None and phase == "Pending" and not reason and not local:
        advice = "the operator has not picked it up yet: is it running? (kubectl get pods -n headstart-system)"
    if advice is not None:
        advice = advice.replace("NAME", job.name)
        advice = for_local(advice) if local else advice
    return Explanation(state, details, lines, advice)


def render(explanation: Explanation) -> list[str]:
    """The explanation as the lines `headstart why` prints."""
    out = [explanation.state]
    out += [f"  {line}" for line in explanation.details]
    if explanation.events:
        out.append("recent events:")
        out += [f"  {line}" for line in explanation.events]
    if explanation.next_step:
        out.append(f"next: {explanation.next_step}")
    return out
