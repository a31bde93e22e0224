"""Talking to the cluster: loading a kubeconfig, and turning the kubernetes client's errors into the SDK's.

Nothing here runs at import: the kubernetes client is imported when a Client for a cluster is made.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .errors import AlreadyExists, ClusterUnreachable, CrdNotInstalled, Forbidden, HeadstartError, InvalidJob, NotFound

#: (connect, read) seconds of an ordinary request; watches and log streams set their own.
REQUEST_TIMEOUT = (5, 30)


@dataclass
class Connection:
    """An ApiClient for one kubeconfig context, and the namespace that context defaults to."""

    api: Any
    namespace: str
    context: str | None
    server: str


def connect(kubeconfig: str | os.PathLike | None = None, context: str | None = None,
            namespace: str | None = None) -> Connection:
    """Load a kubeconfig (``kubeconfig``, else $KUBECONFIG, else ~/.kube/config) or, inside a pod, the
    in-cluster configuration. Raises ClusterUnreachable with what to do when there is none."""
    from kubernetes import client, config
    from kubernetes.config.config_exception import ConfigException

    path = str(kubeconfig) if kubeconfig else None
    if path:
        candidates = [path]
    elif os.environ.get("KUBECONFIG"):
        candidates = os.environ["KUBECONFIG"].split(os.pathsep)
    else:
        candidates = [str(Path.home() / ".kube" / "config")]
    existing = [p for p in candidates if p and Path(p).is_file()]
    if not existing:
        if not path and os.environ.get("KUBERNETES_SERVICE_HOST"):
            config.load_incluster_config()
            configuration = client.Configuration.get_default_copy()
            ns_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
            own = ns_file.read_text().strip() if ns_file.is_file() else "default"
            return Connection(client.ApiClient(configuration), namespace or own, None, configuration.host)
        where = path or os.pathsep.join(c for c in candidates if c)
        raise ClusterUnreachable(f"no kubeconfig at {where}: point --kubeconfig or KUBECONFIG at one "
                                 "(or run `make cluster` for the local one)")
    try:
        contexts, active = config.list_kube_config_contexts(config_file=existing[0])
        chosen = active
        if context is not None:
            chosen = next((c for c in contexts if c["name"] == context), None)
            if chosen is None:
                known = ", ".join(c["name"] for c in contexts) or "none"
                raise ClusterUnreachable(f"no context {context!r} in {existing[0]} (contexts: {known})")
        configuration = client.Configuration()
        config.load_kube_config(config_file=existing[0], context=context, client_configuration=configuration)
    except ConfigException as exc:
        raise ClusterUnreachable(f"cannot use kubeconfig {existing[0]}: {exc}") from exc
    configuration.retries = 0  # an absent cluster is said at once, not after urllib3's retries
    default_ns = ((chosen or {}).get("context") or {}).get("namespace") or "default"
    return Connection(client.ApiClient(configuration), namespace or default_ns, (chosen or {}).get("name"),
                      configuration.host)


def api_message(exc: Any) -> str:
    """The API server's own message of an ApiException, in one line."""
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        body = {}
    message = body.get("message") if isinstance(body, dict) else None
    return " ".join(str(message or exc.reason or exc).split())


def _details(exc: Any) -> dict:
    try:
        body = json.loads(exc.body or "{}")
    except (TypeError, ValueError):
        return {}
    return (body.get("details") or {}) if isinstance(body, dict) else {}


def translate(exc: BaseException, what: str) -> HeadstartError:
    """The SDK error for a failed call about ``what`` (e.g. 'FineTuneJob team-a/flowers')."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError as Urllib3Error

    if isinstance(exc, ApiException):
        status, message = exc.status, api_message(exc)
        if status == 404:
            # a missing object is a Status naming it; an API group nobody serves is a bare "page not found"
            if _details(exc).get("name") is None:
                return CrdNotInstalled("this cluster serves no FineTuneJobs (headstart.dev/v1alpha1): install "
                                       "the CRD with `headstart crd | kubectl apply -f -` or `kubectl apply -k "
                                       "deploy/`")
            return NotFound(f"{what} not found")
        if status == 403:
            return Forbidden(f"{what}: forbidden: {message}")
        if status == 409:
            return AlreadyExists(f"{what} already exists")
        if status in (400, 422):
            return InvalidJob(f"{what}: the API server refused it: {message}")
        if status == 401:
            return ClusterUnreachable(f"the API server does not accept these credentials: {message}")
        if status == 0 or status is None:
            return ClusterUnreachable(f"cannot reach the API server: {exc.reason}")
        return HeadstartError(f"{what}: the API server answered {status}: {message}")
    if isinstance(exc, (Urllib3Error, OSError)):
        return ClusterUnreachable(f"cannot reach the API server: {_first_line(exc)}")
    return HeadstartError(f"{what}: {type(exc).__name__}: {_first_line(exc)}")


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
