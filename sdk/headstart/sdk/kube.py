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


def development_checkout() -> bool:
    """Whether the current directory is a Headstart checkout, where `make cluster` starts a test cluster."""
    return Path("Makefile").is_file() and Path("tests/controlplane/controlplane.mk").is_file()


def _no_kubeconfig(where: str) -> ClusterUnreachable:
    hint = " (or run `make cluster` here for this checkout's test cluster)" if development_checkout() else ""
    return ClusterUnreachable(f"no kubeconfig at {where}: give one with --kubeconfig or KUBECONFIG{hint}")


def _in_cluster(namespace: str | None) -> Connection:
    from kubernetes import client, config

    config.load_incluster_config()
    configuration = client.Configuration.get_default_copy()
    ns_file = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")
    own = ns_file.read_text().strip() if ns_file.is_file() else "default"
    return Connection(client.ApiClient(configuration), namespace or own, None, configuration.host)


def _load(path: str, context: str | None) -> tuple[Any, dict]:
    """The client configuration of ``context`` (or the current one) in the kubeconfig at ``path``."""
    from kubernetes import client, config

    contexts, active = config.list_kube_config_contexts(config_file=path)
    chosen = active
    if context is not None:
        chosen = next((c for c in contexts if c["name"] == context), None)
        if chosen is None:
            known = ", ".join(c["name"] for c in contexts) or "none"
            raise ClusterUnreachable(f"no context {context!r} in {path} (its contexts: {known}): choose one with "
                                     "--context")
    configuration = client.Configuration()
    config.load_kube_config(config_file=path, context=context, client_configuration=configuration)
    return configuration, chosen or {}


def connect(kubeconfig: str | os.PathLike | None = None, context: str | None = None,
            namespace: str | None = None) -> Connection:
    """Load a kubeconfig (``kubeconfig``, else $KUBECONFIG, else ~/.kube/config) or, inside a pod, the
    in-cluster configuration. Raises ClusterUnreachable, in one line, when there is none or it cannot be
    used (malformed, no such context)."""
    import yaml
    from kubernetes import client
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
            return _in_cluster(namespace)
        raise _no_kubeconfig(path or os.pathsep.join(c for c in candidates if c))
    try:
        configuration, chosen = _load(existing[0], context)
    except yaml.YAMLError as exc:
        from headstart.api.yaml_reading import yaml_problem

        raise ClusterUnreachable(f"cannot read kubeconfig {yaml_problem(existing[0], exc)}") from exc
    except ConfigException as exc:
        raise ClusterUnreachable(f"cannot use kubeconfig {existing[0]}: {_first_line(exc)}") from exc
    except (OSError, UnicodeDecodeError) as exc:
        raise ClusterUnreachable(f"cannot read kubeconfig {existing[0]}: {_first_line(exc)}") from exc
    except (TypeError, AttributeError, KeyError, IndexError, ValueError) as exc:  # a shape the client trips on
        raise ClusterUnreachable(f"cannot use kubeconfig {existing[0]}: it is not a kubeconfig (clusters, "
                                 f"users and contexts); the client says {type(exc).__name__}: "
                                 f"{_first_line(exc)}") from exc
    configuration.retries = 0  # an absent cluster is said at once, not after urllib3's retries
    default_ns = (chosen.get("context") or {}).get("namespace") or "default"
    return Connection(client.ApiClient(configuration), namespace or default_ns, chosen.get("name"),
                      configuration.host)


def server_address(url: str) -> str:
    """A server's URL as it may be shown: scheme, host and port, never credentials or a path."""
    from urllib.parse import urlsplit

    parts = urlsplit(url or "")
    if not parts.hostname:
        return "?"
    host = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"{parts.scheme or 'https'}://{host}" + (f":{parts.port}" if parts.port else "")


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
                deploy = " (or the operator with it: `kubectl apply -k deploy/`)" if development_checkout() else ""
                return CrdNotInstalled("this cluster serves no FineTuneJobs (headstart.dev/v1alpha1): install "
                                       f"the CRD with `headstart crd | kubectl apply -f -`{deploy}")
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
            return ClusterUnreachable(f"unable to connect to the server: {exc.reason}")
        return HeadstartError(f"{what}: the API server answered {status}: {message}")
    if isinstance(exc, (Urllib3Error, OSError)):
        return ClusterUnreachable(unreachable(exc))
    return HeadstartError(f"{what}: {type(exc).__name__}: {_first_line(exc)}")


def _root_cause(exc: BaseException) -> BaseException:
    seen: set[int] = set()
    while id(exc) not in seen:
        seen.add(id(exc))
        nxt = getattr(exc, "reason", None) if isinstance(getattr(exc, "reason", None), BaseException) else None
        nxt = nxt or exc.__cause__ or exc.__context__
        if nxt is None:
            break
        exc = nxt
    return exc


def unreachable(exc: BaseException) -> str:
    """A failed connection said as kubectl says it (never urllib3's 'HTTPSConnectionPool(...) Max retries'),
    with the server's host and port only (no path, no credentials)."""
    import socket
    import ssl

    from urllib3.exceptions import NameResolutionError, ProtocolError, ReadTimeoutError

    pool = getattr(exc, "pool", None)
    host, port = getattr(pool, "host", None) or "the server", getattr(pool, "port", None)
    server = f"{host}:{port}" if port else host
    root = _root_cause(exc)
    if isinstance(root, ConnectionRefusedError):
        return f"the connection to the server {server} was refused - did you specify the right host or port?"
    if isinstance(root, socket.gaierror) or isinstance(exc, NameResolutionError) or \
            isinstance(getattr(exc, "reason", None), NameResolutionError):
        return f"unable to connect to the server: lookup {host}: no such host"
    if isinstance(root, ssl.SSLCertVerificationError):
        return f"unable to connect to the server {server}: certificate not trusted: {root.verify_message}"
    if isinstance(root, ssl.SSLError):
        return f"unable to connect to the server {server}: TLS: {root.reason or 'handshake failed'}"
    if isinstance(exc, ReadTimeoutError) or isinstance(getattr(exc, "reason", None), ReadTimeoutError):
        return f"the server {server} did not answer in time"
    if isinstance(root, (TimeoutError, socket.timeout)) or "timed out" in str(root):
        return f"unable to connect to the server {server}: i/o timeout"
    if isinstance(root, (ConnectionResetError, ProtocolError)):
        return f"the connection to the server {server} was closed before it answered"
    if isinstance(root, OSError) and root.strerror:
        return f"unable to connect to the server {server}: {root.strerror.lower()}"
    return f"unable to connect to the server {server}: {type(root).__name__}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0] if text else type(exc).__name__
