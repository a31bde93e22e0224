"""The words of a FineTuneJob's status: its phases and the reasons it is in them.

Every status writer (the operator, its progress endpoint, the SDK's local backend) and every reader
(``headstart why``, the SDK) uses these enums, so the cluster and ``--local`` say the same thing for the
same event. Each reason carries the phase it belongs to, a one-line meaning and the advice
``headstart why`` prints (``NAME`` stands for the job's name).
"""

from __future__ import annotations

from enum import Enum


class Phase(str, Enum):
    """The phase of a FineTuneJob."""

    PENDING = "Pending"
    RUNNING = "Running"
    SUCCEEDED = "Succeeded"
    FAILED = "Failed"
    SUSPENDED = "Suspended"

    def __str__(self) -> str:
        return self.value

    @property
    def terminal(self) -> bool:
        """Whether the job is finished (Succeeded or Failed): it never trains again."""
        return self in (Phase.SUCCEEDED, Phase.FAILED)


TERMINAL_PHASES = (Phase.SUCCEEDED.value, Phase.FAILED.value)


_WARNING, _QUIET = "warning", "quiet"


class Reason(str, Enum):
    """Why a job is in its phase: one CamelCase word, with its phase, meaning and advice.

    ``warning`` reasons are posted as Warning events; ``quiet`` ones are short steps that get no event
    of their own (a burst of new jobs would double its writes otherwise).
    """

    def __new__(cls, value: str, phase: Phase | None, meaning: str, advice: str = "", kind: str = "") -> Reason:
        member = str.__new__(cls, value)
        member._value_ = value
        member.phase = phase
        member.meaning = meaning
        member.advice = advice
        member.warning = kind == _WARNING
        member.quiet = kind == _QUIET
        return member

    def __str__(self) -> str:
        return self.value

    # -- Pending -------------------------------------------------------------------------------------------
    CREATING = ("Creating", Phase.PENDING, "the training Job is being created", "", _QUIET)
    JOB_CREATED = ("JobCreated", Phase.PENDING, "the training Job exists; its pod does not yet", "", _QUIET)
    SCHEDULING = ("Scheduling", Phase.PENDING, "the training pod waits for the scheduler", "", _QUIET)
    CONTAINER_CREATING = ("ContainerCreating", Phase.PENDING, "the training pod is starting on its node", "",
                          _QUIET)
    WAITING_FOR_UPSTREAM = (
        "WaitingForUpstream", Phase.PENDING, "the job named in spec.baseModel.fromJob has not succeeded yet",
        "it starts when the job named in spec.baseModel.fromJob has succeeded")
    OUTPUT_IN_USE = (
        "OutputInUse", Phase.PENDING, "another job writes the same output",
        "another active FineTuneJob writes spec.output.uri (the message names it): this one starts when that one "
        "ends; choose another spec.output.uri to run both at once")
    QUEUED_BY_KUEUE = (
        "QueuedByKueue", Phase.PENDING, "Kueue holds the training Job in its queue",
        "Kueue holds the job in its ClusterQueue until the quota it waits for is free (the message says which "
        "and its position); `kubectl get workloads` shows the queue")
    MISSING_LOCAL_QUEUE = (
        "MissingLocalQueue", Phase.PENDING, "the LocalQueue named in spec.scheduling.queueName does not exist",
        "the LocalQueue of spec.scheduling.queueName does not exist in the job's namespace: create it (kubectl "
        "get localqueues) or delete the job and submit it with an existing queue", _WARNING)
    INSUFFICIENT_GPU = (
        "InsufficientGPU", Phase.PENDING, "no node has the GPUs free",
        "no node has the GPUs free: wait for other jobs, lower spec.resources.gpus, or add GPU nodes")
    INSUFFICIENT_RESOURCES = (
        "InsufficientResources", Phase.PENDING, "no node has the CPU or memory free",
        "no node has the CPU or memory asked for: lower spec.resources or add nodes")
    NO_MATCHING_NODE = (
        "NoMatchingNode", Phase.PENDING, "no node matches spec.scheduling.nodeSelector",
        "no node carries the labels of spec.scheduling.nodeSelector: fix the selector or label a node")
    UNTOLERATED_TAINT = (
        "UntoleratedTaint", Phase.PENDING, "every fitting node has a taint the job does not tolerate",
        "the fitting nodes are tainted: add a toleration under spec.scheduling.tolerations")
    SCHEDULING_GATED = (
        "SchedulingGated", Phase.PENDING, "a scheduling gate holds the training pod",
        "a scheduling gate holds the pod (a queueing system usually lifts it)")
    UNSCHEDULABLE = ("Unschedulable", Phase.PENDING, "the scheduler finds no node for the training pod",
                     "the scheduler's message says why; `kubectl describe pod` shows it too")
    MISSING_VOLUME = (
        "MissingVolume", Phase.PENDING, "a PersistentVolumeClaim the job uses is missing or not bound",
        "a PersistentVolumeClaim the job uses does not exist or is not bound: create it (kubectl get pvc)")
    IMAGE_PULL_ERROR = (
        "ImagePullError", Phase.PENDING, "the trainer image cannot be pulled",
        "the trainer image cannot be pulled: check spec.image (or the operator's --trainer-image) and the "
        "registry credentials", _WARNING)
    CONTAINER_CONFIG_ERROR = (
        "ContainerConfigError", Phase.PENDING, "the training container cannot be configured",
        "the pod cannot be configured: a Secret or ConfigMap it names is probably missing (spec.env, "
        "spec.envFrom)", _WARNING)
    QUOTA_EXCEEDED = (
        "QuotaExceeded", Phase.PENDING, "the namespace's ResourceQuota refuses the training pod",
        "the namespace's ResourceQuota is full: free some quota or ask for more", _WARNING)
    POD_CREATION_FAILED = (
        "PodCreationFailed", Phase.PENDING, "the Job controller cannot create the training pod",
        "the Job controller's message says why (`kubectl describe job NAME`)", _WARNING)

    # -- Running ---------------------------------------------------------------------------------------------
    TRAINING = ("Training", Phase.RUNNING, "the trainer runs")
    FINISHING = ("Finishing", Phase.RUNNING, "the trainer finished; the Job completes", "", _QUIET)
    NODE_LOST = (
        "NodeLost", Phase.RUNNING, "the training pod's node stopped answering",
        "the node stopped answering and Kubernetes keeps its pod until the platform frees it: delete the pod "
        "(`kubectl delete pod POD --force`) or, when the node is down for good, taint it out of service "
        "(`kubectl taint node NODE node.kubernetes.io/out-of-service=nodeshutdown:NoExecute`); the job then "
        "resumes from its last checkpoint on a Ready node", _WARNING)

    # -- Succeeded -------------------------------------------------------------------------------------------
    SUCCEEDED = ("Succeeded", Phase.SUCCEEDED, "the model is written")

    # -- Suspended -------------------------------------------------------------------------------------------
    SUSPENDED = ("Suspended", Phase.SUSPENDED, "spec.runPolicy.suspend is true",
                 "spec.runPolicy.suspend is true: `headstart resume NAME` continues from the last checkpoint")
    PREEMPTED = (
        "Preempted", Phase.SUSPENDED, "Kueue preempted it for a job of higher priority",
        "Kueue preempted it for the job the message names; it is queued again and continues from its last "
        "checkpoint when its ClusterQueue admits it again", _WARNING)

    # -- Failed ----------------------------------------------------------------------------------------------
    INVALID_SPEC = (
        "InvalidSpec", Phase.FAILED, "the spec cannot run",
        "the spec cannot run: fix what the message names (headstart validate FILE), delete the job and "
        "submit it again", _WARNING)
    UPSTREAM_FAILED = (
        "UpstreamFailed", Phase.FAILED, "the job named in spec.baseModel.fromJob failed",
        "the job named in spec.baseModel.fromJob failed: fix and rerun it, then delete and apply this one "
        "again", _WARNING)
    JOB_REJECTED = (
        "JobRejected", Phase.FAILED, "the API server refused the training Job",
        "the API server refused the training Job (an admission policy or a limit): its message says why", _WARNING)
    BAD_IMAGE = ("BadImage", Phase.FAILED, "the trainer image has no TensorFlow",
                 "the trainer image lacks TensorFlow: use the headstart trainer image", _WARNING)
    BAD_BASE_MODEL = ("BadBaseModel", Phase.FAILED, "the base model cannot be used",
                      "the base model cannot be used: check spec.baseModel (uri, cutAt, weights)", _WARNING)
    BAD_DATASET = (
        "BadDataset", Phase.FAILED, "the dataset cannot be read",
        "the dataset cannot be read: check spec.dataset (the path or name, the splits, the volume)", _WARNING)
    OUTPUT_CONFLICT = (
        "OutputConflict", Phase.FAILED, "the output holds another job's model or checkpoints",
        "the output holds the model or checkpoints of the job the message names (another namespace, name or uid: "
        "a job recreated under its name is another job): choose another spec.output.uri or set "
        "spec.output.overwrite", _WARNING)
    OUTPUT_UNWRITABLE = (
        "OutputUnwritable", Phase.FAILED, "the output location cannot be written",
        "the trainer may not write spec.output.uri (permissions, a read-only claim, a missing bucket, a file in "
        "the way): fix the location or its credentials, then submit the job again", _WARNING)
    BAD_CHECKPOINT = (
        "BadCheckpoint", Phase.FAILED, "the output's checkpoint cannot be read",
        "the checkpoint the message names cannot be read (truncated, or written by another version); nothing was "
        "deleted: move it away (or set spec.output.overwrite) to train afresh, then submit the job again",
        _WARNING)
    OOM_KILLED = ("OOMKilled", Phase.FAILED, "the trainer ran out of memory",
                  "the trainer ran out of memory: raise spec.resources.memory or lower dataset.batchSize", _WARNING)
    DEADLINE_EXCEEDED = (
        "DeadlineExceeded", Phase.FAILED, "it ran past spec.runPolicy.activeDeadlineSeconds",
        "it ran past spec.runPolicy.activeDeadlineSeconds: raise it, or train fewer epochs", _WARNING)
    TRAINER_FAILED = ("TrainerFailed", Phase.FAILED, "the trainer failed",
                      "the trainer failed: `headstart logs NAME` shows why", _WARNING)

    # -- a condition's reason, whatever the phase --------------------------------------------------------------
    SPEC_CHANGE_REFUSED = (
        "SpecChangeRefused", None, "the spec changed after the training Job was created",
        "a running job's spec cannot change: delete it and submit the new spec (it resumes nothing: a new "
        "spec trains afresh)", _WARNING)

    @classmethod
    def lookup(cls, value: str | None) -> Reason | None:
        """The reason named ``value``, or None for a word this version does not know."""
        try:
            return cls(value) if value else None
        except ValueError:
            return None


#: Failed before anything was created: a fixed spec (or upstream, or operator) is looked at again.
NOTHING_CREATED = (Reason.INVALID_SPEC, Reason.UPSTREAM_FAILED, Reason.JOB_REJECTED)
