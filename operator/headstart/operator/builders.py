"""Pure builders: a FineTuneJob in, the manifest of its one child, the training Job, out (no API calls).

The Job is named by :mod:`headstart.api.names`, labelled with the job it belongs to and owned by it
(ownerReferences), so deleting the FineTuneJob deletes it and a second create is a 409, never a duplicate.
Everything the training pod needs travels inside it: the job file (an annotation the downward API mounts),
the progress endpoint's URL and CA (env), and a token for that endpoint alone (a projected ServiceAccount
token whose audience names the job; no API credential is mounted).
"""

from __future__ import annotations

from typing import Any

import yaml

from headstart.api import names
from headstart.api.digests import spec_hash
from headstart.api.exitcodes import PERMANENT_EXIT_CODES
from headstart.api.job import FineTuneJob, manifest
from headstart.api.pods import restricted_container, restricted_pod
from headstart.api.progress import audience, endpoint_path
from headstart.api.uris import pvc_claim

from .config import TrainerConfig

GPU_RESOURCE = "nvidia.com/gpu"
_DUMPER = getattr(yaml, "CSafeDumper", yaml.SafeDumper)  # libyaml when there: 20x faster in a burst


def owner_reference(body: dict[str, Any]) -> dict[str, Any]:
    return names.owner_reference(body["metadata"]["name"], body["metadata"]["uid"])


def _meta(body: dict[str, Any], name: str, extra_labels: dict[str, str] | None = None,
          annotations: dict[str, str] | None = None) -> dict[str, Any]:
    meta = body["metadata"]
    out: dict[str, Any] = {
        "name": name,
        "namespace": meta["namespace"],
        "labels": {**names.child_labels(meta["name"]), **(extra_labels or {})},
        "ownerReferences": [owner_reference(body)],
    }
    if annotations:
        out["annotations"] = annotations
    return out


def rendered_job(body: dict[str, Any]) -> str:
    """The job file the trainer reads: the user's spec exactly as written (defaults apply on reading), with
    the API version it was read with, and the job's name, namespace and uid (the owner of its outputs)."""
    meta = body["metadata"]
    doc = manifest(meta["name"], meta["namespace"], body["spec"], meta.get("uid"))
    return yaml.dump(doc, Dumper=_DUMPER, sort_keys=False)


def claims_of(job: FineTuneJob, from_jobs: dict[str, str]) -> list[tuple[str, bool]]:
    """Every PVC the job reads or writes through a pvc:// URI, in a stable order, with whether the job
    writes it: the output's claim, and a TFDS dataDir that may be downloaded into; every other claim, its
    inputs, is mounted read-only."""
    spec = job.spec
    written = [spec.output.uri]
    if spec.dataset.tfds is not None and spec.dataset.tfds.data_dir and spec.dataset.tfds.download:
        written.append(spec.dataset.tfds.data_dir)
    writes = {found[0] for found in map(pvc_claim, written) if found is not None}
    uris = [spec.output.uri, spec.base_model.uri, spec.base_model.weights, *from_jobs.values()]
    if spec.dataset.image_folder is not None:
        uris.append(spec.dataset.image_folder.uri)
    if spec.dataset.tfds is not None:
        uris.append(spec.dataset.tfds.data_dir)
    claims: list[tuple[str, bool]] = []
    for uri in uris:
        found = pvc_claim(uri) if uri else None
        if found is not None and found[0] not in [c for c, _ in claims]:
            claims.append((found[0], found[0] in writes))
    return claims


def _volume_name(claim: str) -> str:
    return names.shorten(f"pvc-{claim}")


def _volumes(job: FineTuneJob, config: TrainerConfig, from_jobs: dict[str, str],
             namespace: str) -> tuple[list[dict], list[dict], list[dict]]:
    """(volumes, mounts, env) of the training pod."""
    spec_ref = {"fieldPath": f"metadata.annotations['{names.ANNOTATION_SPEC}']"}
    volumes: list[dict] = [{"name": "job", "downwardAPI": {"items": [{"path": names.JOB_FILE_NAME,
                                                                       "fieldRef": spec_ref}]}}]
    mounts: list[dict] = [{"name": "job", "mountPath": names.JOB_MOUNT_DIR, "readOnly": True}]
    env: list[dict] = [{"name": names.ENV_PVC_ROOT, "value": names.PVC_ROOT}]
    if config.progress_url:
        token = {"audience": audience(namespace, job.name), "expirationSeconds": names.PROGRESS_TOKEN_SECONDS,
                 "path": names.PROGRESS_TOKEN_FILE.rsplit("/", 1)[1]}
        volumes.append({"name": "progress-token", "projected": {"sources": [{"serviceAccountToken": token}]}})
        mounts.append({"name": "progress-token", "mountPath": names.PROGRESS_TOKEN_DIR, "readOnly": True})
        env += [{"name": names.ENV_PROGRESS_URL,
                 "value": config.progress_url.rstrip("/") + endpoint_path(namespace, job.name)},
                {"name": names.ENV_PROGRESS_TOKEN, "value": names.PROGRESS_TOKEN_FILE}]
        if config.progress_ca:
            env.append({"name": names.ENV_PROGRESS_CA, "value": config.progress_ca})
    for claim, writes in claims_of(job, from_jobs):
        source: dict[str, Any] = {"claimName": claim} if writes else {"claimName": claim, "readOnly": True}
        volumes.append({"name": _volume_name(claim), "persistentVolumeClaim": source})
        mounts.append({"name": _volume_name(claim), "mountPath": f"{names.PVC_ROOT}/{claim}",
                       **({} if writes else {"readOnly": True})})
    for volume, claim, path, var in (("keras-cache", config.keras_cache_claim, names.KERAS_CACHE_DIR,
                                      names.ENV_KERAS_HOME),
                                     ("tfds-cache", config.tfds_cache_claim, names.TFDS_CACHE_DIR,
                                      names.ENV_TFDS_DATA_DIR)):
        if claim:
            volumes.append({"name": volume, "persistentVolumeClaim": {"claimName": claim}})
            mounts.append({"name": volume, "mountPath": path})
            env.append({"name": var, "value": path})
    # The shared caches stay writable (a weight or dataset is downloaded once, by the first job that needs
    # it). A writable scratch directory: TensorFlow and Keras write temporary files and $HOME caches.
    volumes.append({"name": "tmp", "emptyDir": {}})
    mounts.append({"name": "tmp", "mountPath": "/tmp"})
    return volumes, mounts, env


def _user_env(job: FineTuneJob) -> tuple[list[dict], list[dict]]:
    env = []
    for var in job.spec.env:
        if var.secret_key_ref is not None:
            env.append({"name": var.name, "valueFrom": {"secretKeyRef": {
                "name": var.secret_key_ref.name, "key": var.secret_key_ref.key}}})
        else:
            env.append({"name": var.name, "value": var.value or ""})
    env_from = [{"secretRef": {"name": source.secret_ref.name}} for source in job.spec.env_from]
    return env, env_from


def _resources(job: FineTuneJob) -> dict[str, Any]:
    res = job.spec.resources
    limits: dict[str, str] = {}
    requests: dict[str, str] = {}
    if res.gpus:
        limits[GPU_RESOURCE] = str(res.gpus)
    for key, value in (("cpu", res.cpu), ("memory", res.memory)):
        if value:
            limits[key] = requests[key] = value
    out: dict[str, Any] = {}
    if limits:
        out["limits"] = limits
    if requests:
        out["requests"] = requests
    return out


def trainer_args(job: FineTuneJob, from_jobs: dict[str, str]) -> list[str]:
    args = ["--job", names.JOB_FILE]
    for name, uri in sorted(from_jobs.items()):
        args += ["--from-job", f"{name}={uri}"]
    return args


def pod_security(config: TrainerConfig) -> tuple[dict, dict]:
    """(pod, container) security contexts that Pod Security "restricted" admits."""
    pod = restricted_pod(config.run_as_user, config.run_as_user, fsGroup=config.run_as_user,
                         # a volume whose root already has the group is not chowned file by file at every start
                         fsGroupChangePolicy="OnRootMismatch")
    return pod, restricted_container(privileged=False)


def created_suspended(job: FineTuneJob) -> bool:
    """A queued job's Job starts suspended: Kueue unsuspends it when its ClusterQueue admits it (and owns the
    field from then on); any other Job as spec.runPolicy.suspend says."""
    return job.spec.run_policy.suspend or bool(job.spec.scheduling.queue_name)


def build_job(body: dict[str, Any], job: FineTuneJob, config: TrainerConfig,
              from_jobs: dict[str, str] | None = None) -> dict[str, Any]:
    """The batch/v1 Job that runs the trainer for FineTuneJob ``body`` (``job`` is its parsed form).

    ``from_jobs`` maps baseModel.fromJob to that job's model URI (passed as ``--from-job NAME=URI``)."""
    name = body["metadata"]["name"]
    spec = job.spec
    digest = spec_hash(body["spec"])
    extra_labels = {}
    if spec.scheduling.queue_name:
        extra_labels[names.LABEL_KUEUE_QUEUE] = spec.scheduling.queue_name
    policy = spec.run_policy
    job_spec: dict[str, Any] = {
        "suspend": created_suspended(job),
        "backoffLimit": policy.backoff_limit,
        "completions": 1,
        "parallelism": 1,
        "podFailurePolicy": {"rules": [
            {"action": "FailJob", "onExitCodes": {"containerName": names.CONTAINER_NAME, "operator": "In",
                                                  "values": list(PERMANENT_EXIT_CODES)}},
            # evicted or preempted pods do not count against backoffLimit
            {"action": "Ignore", "onPodConditions": [{"type": "DisruptionTarget"}]},
        ]},
        "template": {
            "metadata": {"labels": names.child_labels(name),
                         "annotations": {names.ANNOTATION_SPEC_HASH: digest,
                                         names.ANNOTATION_SPEC: rendered_job(body)}},
            "spec": _pod_spec(body, job, config, from_jobs or {}),
        },
    }
    if policy.active_deadline_seconds is not None:
        job_spec["activeDeadlineSeconds"] = policy.active_deadline_seconds
    if policy.ttl_seconds_after_finished is not None:
        job_spec["ttlSecondsAfterFinished"] = policy.ttl_seconds_after_finished
    return {"apiVersion": "batch/v1", "kind": "Job",
            "metadata": _meta(body, names.job_name_for(name), extra_labels,
                              {names.ANNOTATION_SPEC_HASH: digest}),
            "spec": job_spec}


def _pod_spec(body: dict[str, Any], job: FineTuneJob, config: TrainerConfig,
              from_jobs: dict[str, str]) -> dict[str, Any]:
    """The training pod's spec: the trainer container, its volumes, its security and its scheduling."""
    spec = job.spec
    volumes, mounts, env = _volumes(job, config, from_jobs, body["metadata"]["namespace"])
    env += [{"name": names.ENV_JOB_NAME, "value": body["metadata"]["name"]},
            {"name": names.ENV_JOB_NAMESPACE, "valueFrom": {"fieldRef": {"fieldPath": "metadata.namespace"}}}]
    user_env, env_from = _user_env(job)
    pod_sc, container_sc = pod_security(config)
    container: dict[str, Any] = {
        "name": names.CONTAINER_NAME,
        "image": spec.image or config.image,
        "imagePullPolicy": config.pull_policy,
        "command": ["python", "-m", names.TRAINER_MODULE],
        "args": trainer_args(job, from_jobs),
        "env": env + user_env,
        "resources": _resources(job),
        "securityContext": container_sc,
        "volumeMounts": mounts,
        "terminationMessagePath": names.TERMINATION_LOG,
        # an empty message on failure falls back to the log's tail: the trainer's one-line error
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }
    if env_from:
        container["envFrom"] = env_from
    pod_spec: dict[str, Any] = {
        "restartPolicy": "Never",
        # after SIGTERM the trainer finishes its step and checkpoints inside the epoch within this time
        "terminationGracePeriodSeconds": spec.run_policy.termination_grace_period_seconds,
        # The pod runs user code: it holds no credential for the API server (the namespace's default
        # ServiceAccount only names it in the progress token, whose audience the API server refuses).
        "automountServiceAccountToken": False,
        "enableServiceLinks": False,
        "securityContext": pod_sc,
        "containers": [container],
        "volumes": volumes,
    }
    sched = spec.scheduling
    if sched.node_selector:
        pod_spec["nodeSelector"] = dict(sched.node_selector)
    if sched.tolerations:
        pod_spec["tolerations"] = [t.to_wire(exclude_unset=False) for t in sched.tolerations]
    if sched.priority_class_name:
        pod_spec["priorityClassName"] = sched.priority_class_name
    return pod_spec
