"""Names and labels that the operator, the trainer and the SDK share.

Import-light on purpose (no kubernetes client, no kopf, no TensorFlow): the trainer reads it inside the
pod, the SDK at the command line, the operator when it builds children.
"""

from __future__ import annotations

import hashlib

from .uris import DEFAULT_PVC_ROOT, PVC_ROOT_ENV

# -- the resource --------------------------------------------------------------------------------------------
GROUP = "headstart.dev"
VERSION = "v1alpha1"
API_VERSION = f"{GROUP}/{VERSION}"
KIND = "FineTuneJob"
PLURAL = "finetunejobs"
SINGULAR = "finetunejob"
SHORT_NAMES = ("ftj",)

# -- labels and annotations on every child of a FineTuneJob -------------------------------------------------
#: The FineTuneJob a child belongs to (its name, shortened by :func:`label_value` past 63 characters).
LABEL_FINETUNEJOB = "headstart.dev/finetunejob"
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"
MANAGED_BY = "headstart-operator"
LABEL_NAME = "app.kubernetes.io/name"
APP_NAME = "headstart"
LABEL_COMPONENT = "app.kubernetes.io/component"
COMPONENT_TRAINER = "trainer"
#: sha256 (shortened) of the spec a child was built from; a different spec later is a refused change.
ANNOTATION_SPEC_HASH = "headstart.dev/spec-hash"
#: On the training pod: the job as the operator read it (apiVersion, kind, name, namespace and the user's
#: spec as written), which the downward API mounts as the trainer's job file.
ANNOTATION_SPEC = "headstart.dev/spec"
#: Kueue's label: the LocalQueue a Job is submitted to.
LABEL_KUEUE_QUEUE = "kueue.x-k8s.io/queue-name"

# -- kopf's own bookkeeping on FineTuneJobs (annotations only; no status.kopf) ----------------------------
KOPF_PREFIX = "operator.headstart.dev"
FINALIZER = f"{KOPF_PREFIX}/finalizer"

# -- the training pod ------------------------------------------------------------------------------------------
CONTAINER_NAME = "trainer"
#: Where the downward API mounts the job file (the pod's ANNOTATION_SPEC).
JOB_MOUNT_DIR = "/etc/headstart"
JOB_FILE_NAME = "job.yaml"
JOB_FILE = f"{JOB_MOUNT_DIR}/{JOB_FILE_NAME}"
TRAINER_MODULE = "headstart.trainer"
ENV_PVC_ROOT = PVC_ROOT_ENV
PVC_ROOT = DEFAULT_PVC_ROOT
ENV_KERAS_HOME = "KERAS_HOME"
ENV_TFDS_DATA_DIR = "TFDS_DATA_DIR"
KERAS_CACHE_DIR = "/cache/keras"
TFDS_CACHE_DIR = "/cache/tensorflow_datasets"
#: The FineTuneJob the pod trains (for its log lines; the job file names it too).
ENV_JOB_NAME = "HEADSTART_FINETUNEJOB_NAME"
ENV_JOB_NAMESPACE = "HEADSTART_FINETUNEJOB_NAMESPACE"
#: The operator's progress endpoint, as the pod reaches it: this job's resource URL, the CA (PEM) its
#: serving certificate is checked against, and the file of the projected token whose audience is the job.
ENV_PROGRESS_URL = "HEADSTART_PROGRESS_URL"
ENV_PROGRESS_CA = "HEADSTART_PROGRESS_CA"
ENV_PROGRESS_TOKEN = "HEADSTART_PROGRESS_TOKEN"
ENV_PROGRESS_INTERVAL = "HEADSTART_PROGRESS_INTERVAL"
PROGRESS_TOKEN_DIR = "/var/run/secrets/headstart.dev/progress"
PROGRESS_TOKEN_FILE = f"{PROGRESS_TOKEN_DIR}/token"
#: Lifetime the kubelet gives the projected token (it rotates it at 80%).
PROGRESS_TOKEN_SECONDS = 3600
#: Where the trainer leaves its small JSON result for the operator (the container's termination message).
TERMINATION_LOG = "/dev/termination-log"
ENV_TERMINATION_LOG = "HEADSTART_TERMINATION_LOG"

K8S_NAME_MAX = 63
_HASH_CHARS = 8


def _short_hash(text: str) -> str:
    return hashlib.sha256(text.encode()).hexdigest()[:_HASH_CHARS]


def shorten(name: str, limit: int = K8S_NAME_MAX) -> str:
    """``name`` if it fits ``limit``, else a prefix and a short hash of the whole (deterministic, unique
    for all practical purposes, a valid DNS label)."""
    if len(name) <= limit:
        return name
    keep = limit - _HASH_CHARS - 1
    return f"{name[:keep].rstrip('-.')}-{_short_hash(name)}"


def child_name(job_name: str, suffix: str = "") -> str:
    """Name of a child of FineTuneJob ``job_name``: ``<job>`` or ``<job>-<suffix>``, at most 63 characters.

    The 63-character limit (a Job's name becomes a pod label value) is met by cutting the job's name and
    adding a hash of the full name, so two long names sharing a prefix never collide."""
    full = f"{job_name}-{suffix}" if suffix else job_name
    if len(full) <= K8S_NAME_MAX:
        return full
    tail = f"-{_short_hash(full)}" + (f"-{suffix}" if suffix else "")
    return f"{job_name[:K8S_NAME_MAX - len(tail)].rstrip('-.')}{tail}"


def job_name_for(job_name: str) -> str:
    """The batch/v1 Job that trains FineTuneJob ``job_name`` (the same name when it fits)."""
    return child_name(job_name)


def label_value(job_name: str) -> str:
    """The value of :data:`LABEL_FINETUNEJOB` for a job (label values are at most 63 characters)."""
    return shorten(job_name)


def child_labels(job_name: str) -> dict[str, str]:
    """Labels every child of a FineTuneJob carries."""
    return {
        LABEL_FINETUNEJOB: label_value(job_name),
        LABEL_MANAGED_BY: MANAGED_BY,
        LABEL_NAME: APP_NAME,
        LABEL_COMPONENT: COMPONENT_TRAINER,
    }


def owner_reference(job_name: str, uid: str, *, controller: bool = True) -> dict[str, object]:
    """The ownerReference a child of FineTuneJob ``job_name`` carries: deleting the job deletes the child.
    A controller reference also blocks the job's deletion until the child is gone (which, with
    OwnerReferencesPermissionEnforcement, needs the right to update the job's finalizers)."""
    ref: dict[str, object] = {"apiVersion": API_VERSION, "kind": KIND, "name": job_name, "uid": uid}
    if controller:
        ref.update(controller=True, blockOwnerDeletion=True)
    return ref


def selector_for(job_name: str) -> str:
    """Label selector of a FineTuneJob's children (for kubectl -l and list calls)."""
    return f"{LABEL_FINETUNEJOB}={label_value(job_name)},{LABEL_MANAGED_BY}={MANAGED_BY}"
