"""The kopf handlers, registered into a registry made by :func:`build_registry` (nothing at import time).

Thin on purpose: each handler hands its object to the :class:`~.reconcile.Reconciler`. FineTuneJobs are
reconciled on create, resume (operator start) and spec update; their status follows their children
through kopf's indexes and event handlers of the training Jobs, their pods and the Job controller's
FailedCreate events, and Kueue's Workloads and LocalQueues (:mod:`.queueing`). The progress endpoint (when
there is one) starts with kopf and stops with it.
"""

from __future__ import annotations

import collections.abc
import hashlib
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import aiohttp
import kopf

from headstart.api import names
from headstart.api.job import GROUP, PLURAL, VERSION
from headstart.api.reasons import TERMINAL_PHASES
from headstart.api.uris import digest_credentials

from . import queueing
from .kube import ApiError
from .lookup import plain
from .reconcile import RETRYABLE, Reconciler

FTJ = (GROUP, VERSION, PLURAL)
JOBS = ("batch", "v1", "jobs")
PODS = ("v1", "pods")
NODES = ("v1", "nodes")
EVENTS = ("v1", "events")
CHILD_SELECTOR = f"{names.LABEL_MANAGED_BY}={names.MANAGED_BY}"
FAILED_CREATE_SELECTOR = "reason=FailedCreate,involvedObject.kind=Job"
HANDLER_RETRIES = 8
HANDLER_BACKOFF = 2.0

INDEXES = ("ftj_index", "ftj_downstream", "job_index", "pod_index", "node_index")

log = logging.getLogger("headstart.operator")


def _minimal(body: Any, keep_spec: bool = True) -> dict[str, Any]:
    meta = body["metadata"]
    out: dict[str, Any] = {"metadata": {
        k: plain(meta[k]) for k in ("name", "namespace", "uid", "generation", "labels", "annotations",
                                    "creationTimestamp", "deletionTimestamp", "ownerReferences") if k in meta}}
    for part in ("spec", "status") if keep_spec else ("status",):
        if part in body:
            out[part] = plain(body[part])
    return out


def _pod_summary(body: Any) -> dict[str, Any]:
    out = _minimal(body, keep_spec=False)
    out["spec"] = {"nodeName": (body.get("spec") or {}).get("nodeName")}
    return out


def _child_key(namespace: str, labels: Any) -> dict[tuple[str, str], bool] | None:
    label = (labels or {}).get(names.LABEL_FINETUNEJOB)
    if not label or (labels or {}).get(names.LABEL_MANAGED_BY) != names.MANAGED_BY:
        return None
    return {(namespace, label): True}


def _node_readiness(status: Any) -> dict[str, Any]:
    """{"ready": the Ready condition's status ("Unknown" when the node never said), "since": when it became so}."""
    for cond in (status or {}).get("conditions") or []:
        if cond.get("type") == "Ready":
            return {"ready": cond.get("status") or "Unknown", "since": cond.get("lastTransitionTime")}
    return {"ready": "Unknown", "since": None}


def _indexes(kwargs: dict[str, Any]) -> dict[str, Any]:
    return {name: kwargs.get(name) for name in INDEXES}


async def _guard(coro: Any, retry: int) -> None:
    """Run a reconcile; API hiccups become bounded, delayed retries; refusals are final."""
    try:
        await coro
    except ApiError as exc:
        if exc.status in RETRYABLE or exc.status in (403, 404):
            raise kopf.TemporaryError(f"API {exc.status}: {exc.message}", delay=HANDLER_BACKOFF * (retry + 1)) from exc
        raise kopf.PermanentError(f"API {exc.status}: {exc.message}") from exc
    except (TimeoutError, OSError, aiohttp.ClientError) as exc:
        raise kopf.TemporaryError(f"API unreachable: {exc}", delay=HANDLER_BACKOFF * (retry + 1)) from exc


def _masked_uris(value: Any) -> Any:
    """Every string in ``value`` with its URIs' credentials and query strings as digests."""
    if isinstance(value, str):
        return digest_credentials(value) if "://" in value else value
    if isinstance(value, collections.abc.Mapping):
        return {k: _masked_uris(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_masked_uris(v) for v in value]
    return value


def masked_env(spec: Any) -> Any:
    """``spec`` with each plain env value, and each URI's credentials, replaced by a digest: the diff-base
    annotation still changes when one does, but carries none of them (they may be credentials someone pasted
    in)."""
    spec = _masked_uris(spec)
    env = (spec or {}).get("env") if isinstance(spec, collections.abc.Mapping) else None
    if not env:
        return spec
    def mask(var: Any) -> Any:
        if not isinstance(var, collections.abc.Mapping) or var.get("value") is None:
            return var
        digest = hashlib.sha256(str(var["value"]).encode()).hexdigest()[:16]
        return {**var, "value": f"sha256:{digest}"}
    return {**spec, "env": [mask(v) for v in env]}


class LeanDiffBaseStorage(kopf.AnnotationsDiffBaseStorage):
    """kopf's diff-base in annotations, the same essence built without deep-copying the status and the
    managed fields first (kopf copies the whole body on every event: most of the operator's CPU in a burst),
    and with env values as digests (:func:`masked_env`)."""

    def build(self, *, body: Any, extra_fields: Any = None) -> Any:
        if any(tuple(field)[:1] in (("status",), ("metadata",)) for field in extra_fields or ()):
            body = kopf.Body({**body, "spec": masked_env(body.get("spec"))})
            return super().build(body=body, extra_fields=extra_fields)  # fields it would cut: kopf's own way
        meta = body.get("metadata") or {}
        trimmed = {k: v for k, v in body.items() if k not in ("metadata", "status")}
        trimmed["spec"] = masked_env(trimmed.get("spec"))
        trimmed["metadata"] = {k: meta[k] for k in ("labels", "annotations") if k in meta}
        return super().build(body=kopf.Body(trimmed), extra_fields=extra_fields)


def build_registry(reconciler: Reconciler, serve: Callable[[], Awaitable[None]] | None = None,
                   unserve: Callable[[], Awaitable[None]] | None = None,
                   resync_seconds: float = 60.0) -> kopf.OperatorRegistry:
    """Every handler, for ``reconciler``; ``serve``/``unserve`` start and stop the progress endpoint; every
    job is reconciled again each ``resync_seconds``, whatever happened."""
    registry = kopf.OperatorRegistry()
    _register_lifecycle(registry, reconciler, serve, unserve)
    _register_indexes(registry)
    _register_finetunejobs(registry, reconciler, resync_seconds)
    _register_children(registry, reconciler)
    queueing.register(registry, reconciler, _indexes)  # Kueue's Workloads and LocalQueues
    return registry


def _register_lifecycle(registry: kopf.OperatorRegistry, reconciler: Reconciler,
                        serve: Callable[[], Awaitable[None]] | None,
                        unserve: Callable[[], Awaitable[None]] | None) -> None:
    """Login, and the progress endpoint's start and stop with the operator."""

    @kopf.on.login(registry=registry)
    def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
        return kopf.login_via_client(**kwargs)

    @kopf.on.startup(registry=registry)
    async def startup(**kwargs: Any) -> None:
        # kopf hands startup handlers its (still empty) indexes; they are live views, filled by its watches.
        reconciler.indexes = _indexes(kwargs)
        if serve is not None:
            await serve()

    @kopf.on.cleanup(registry=registry)
    async def cleanup(**_: Any) -> None:
        if unserve is not None:
            await unserve()


def _register_indexes(registry: kopf.OperatorRegistry) -> None:
    """In-memory views kept current by kopf's watches; handlers receive each as the keyword argument named
    by its id."""

    @kopf.index(*FTJ, id="ftj_index", registry=registry)
    def ftj_index(namespace: str, name: str, body: Any, **_: Any) -> dict:
        return {(namespace, names.label_value(name)): _minimal(body)}

    @kopf.index(*FTJ, id="ftj_downstream", registry=registry)
    def ftj_downstream(namespace: str, name: str, spec: Any, **_: Any) -> dict | None:
        upstream = (spec.get("baseModel") or {}).get("fromJob")
        return {(namespace, upstream): name} if upstream else None

    @kopf.index(*JOBS, id="job_index", registry=registry, labels={names.LABEL_MANAGED_BY: names.MANAGED_BY})
    def job_index(namespace: str, labels: Any, body: Any, **_: Any) -> dict | None:
        key = _child_key(namespace, labels)
        return {k: _minimal(body) for k in key} if key else None

    @kopf.index(*PODS, id="pod_index", registry=registry, labels={names.LABEL_MANAGED_BY: names.MANAGED_BY})
    def pod_index(namespace: str, labels: Any, body: Any, **_: Any) -> dict | None:
        key = _child_key(namespace, labels)
        return {k: _pod_summary(body) for k in key} if key else None

    @kopf.index(*NODES, id="node_index", registry=registry)
    def node_index(name: str, status: Any, **_: Any) -> dict:
        return {name: _node_readiness(status)}


def _register_finetunejobs(registry: kopf.OperatorRegistry, reconciler: Reconciler, resync_seconds: float) -> None:
    """A FineTuneJob's creation, spec change, resume and periodic resync; its other events."""
    handler_opts = {"registry": registry, "retries": HANDLER_RETRIES, "backoff": HANDLER_BACKOFF}

    @kopf.on.resume(*FTJ, **handler_opts)
    @kopf.on.create(*FTJ, **handler_opts)
    @kopf.on.update(*FTJ, field="spec", **handler_opts)
    async def reconcile(body: Any, retry: int, **kwargs: Any) -> None:
        await _guard(reconciler.ensure(_minimal(body), _indexes(kwargs)), retry)

    @kopf.timer(*FTJ, interval=resync_seconds, initial_delay=resync_seconds, registry=registry)
    async def resync(body: Any, **kwargs: Any) -> None:
        """Each job's status re-derived from what exists, every resync_seconds: what a lost event left behind
        (a transition during an API server outage, a downstream job whose wake-up failed, a handler whose
        retries ran out) is put right. Idempotent; it writes only what changed."""
        try:
            await reconciler.ensure(_minimal(body), _indexes(kwargs))
        except (ApiError, TimeoutError, OSError, aiohttp.ClientError, kopf.TemporaryError) as exc:
            reconciler.metrics.error("resync")  # the next round tries again
            log.warning("resync of %s/%s: %s", body["metadata"].get("namespace"), body["metadata"].get("name"), exc)

    @kopf.on.event(*FTJ, registry=registry)
    async def ftj_event(type: str | None, namespace: str, name: str, body: Any, **kwargs: Any) -> None:
        if type == "DELETED":
            reconciler.forget(namespace, name)
        try:
            await reconciler.upstream_changed(namespace, name, _indexes(kwargs))
            if type == "DELETED" or (body.get("status") or {}).get("phase") in TERMINAL_PHASES:
                await reconciler.output_freed(_minimal(body), _indexes(kwargs))
        except (ApiError, TimeoutError, OSError, aiohttp.ClientError) as exc:  # its next event or the resync retries
            reconciler.metrics.error(exc.__class__.__name__)
            log.warning("could not reconcile the jobs waiting for %s/%s (the resync will): %s", namespace, name, exc)


def _register_children(registry: kopf.OperatorRegistry, reconciler: Reconciler) -> None:
    """The training Jobs, their pods, the nodes they run on and the Job controller's FailedCreate events: each
    change refreshes the status of the FineTuneJob concerned."""

    async def child_changed(namespace: str, labels: Any, kwargs: dict[str, Any]) -> None:
        label = (labels or {}).get(names.LABEL_FINETUNEJOB)
        if not label:
            return
        try:
            await reconciler.refresh(namespace, label, _indexes(kwargs))
        except (ApiError, TimeoutError, OSError, aiohttp.ClientError) as exc:  # the child's next event retries
            reconciler.metrics.error(f"api_{exc.status}" if isinstance(exc, ApiError) else type(exc).__name__)
            log.warning("status of %s/%s not updated: %s", namespace, label, exc)

    @kopf.on.event(*JOBS, registry=registry, labels={names.LABEL_MANAGED_BY: names.MANAGED_BY})
    async def job_event(namespace: str, labels: Any, **kwargs: Any) -> None:
        await child_changed(namespace, labels, kwargs)

    @kopf.on.event(*PODS, registry=registry, labels={names.LABEL_MANAGED_BY: names.MANAGED_BY})
    async def pod_event(namespace: str, labels: Any, **kwargs: Any) -> None:
        await child_changed(namespace, labels, kwargs)

    @kopf.on.event(*NODES, registry=registry)
    async def node_event(name: str, **kwargs: Any) -> None:
        """A node changed (its readiness, say): the jobs with a pod on it say what that means for them
        (NodeLost, or training again); their status is written only if it changed."""
        for namespace, label in reconciler.jobs_on_node(name, _indexes(kwargs)):
            await child_changed(namespace, {names.LABEL_FINETUNEJOB: label}, kwargs)

    @kopf.on.event(*EVENTS, registry=registry)
    async def failed_create(body: Any, namespace: str, **kwargs: Any) -> None:
        involved = body.get("involvedObject") or {}
        if body.get("reason") != "FailedCreate" or involved.get("kind") != "Job":
            return
        job_name = involved.get("name")
        job_obj = None
        for store_key in kwargs.get("job_index") or {}:
            for value in kwargs["job_index"][store_key]:
                if store_key[0] == namespace and value["metadata"]["name"] == job_name:
                    job_obj = value
        if job_obj is None:
            return
        reconciler.failed_create[(namespace, job_name)] = body.get("message") or ""
        await child_changed(namespace, job_obj["metadata"].get("labels"), kwargs)
