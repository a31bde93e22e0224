"""``python -m headstart.operator (--namespace NS ... | --all-namespaces)``: the operator's entrypoint.

Every kopf setting is made here, once, before kopf starts (see :func:`settings_for`).
"""

from __future__ import annotations

import logging
import sys

from .config import ConfigError, OperatorConfig, from_args, parser

#: kopf's retries of one API request (a watch's too), in seconds: about 9.5 minutes in all. An API server that
#: restarts refuses connections, then answers 403 for a moment while its RBAC cache fills; a watch's request
#: retries through both, where (1, 2, 4, 8, 16) gave up after 31 s and stopped the operator (the control-plane
#: restart story found it). Beyond them the operator exits, and its Deployment starts it again.
API_ERROR_BACKOFFS = (1, 2, 4, 8, 16) + (30,) * 18


def settings_for(config: OperatorConfig):
    """kopf's settings, all explicit: its own finalizer name and annotation prefix, progress and diff-base
    kept in annotations (a structural schema prunes status.kopf), bounded watch and request timeouts,
    server-side selectors for the children it watches, events posted, no peering (one replica)."""
    import kopf

    from headstart.api import names

    from .handlers import CHILD_SELECTOR, EVENTS, FAILED_CREATE_SELECTOR, JOBS, PODS, LeanDiffBaseStorage

    settings = kopf.OperatorSettings()
    settings.peering.standalone = True
    settings.peering.clusterwide = config.all_namespaces
    settings.persistence.finalizer = names.FINALIZER
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=names.KOPF_PREFIX)
    settings.persistence.diffbase_storage = LeanDiffBaseStorage(
        prefix=names.KOPF_PREFIX, key="last-handled-configuration")
    settings.watching.server_timeout = 270
    settings.watching.client_timeout = 300
    settings.watching.connect_timeout = 10
    settings.watching.label_selectors[JOBS] = CHILD_SELECTOR
    settings.watching.label_selectors[PODS] = CHILD_SELECTOR
    settings.watching.field_selectors[EVENTS] = FAILED_CREATE_SELECTOR
    settings.networking.request_timeout = 30
    settings.networking.connect_timeout = 10
    settings.networking.error_backoffs = API_ERROR_BACKOFFS
    settings.posting.enabled = True
    settings.posting.loggers = False
    settings.posting.level = logging.INFO
    settings.posting.reporting_component = names.MANAGED_BY
    settings.execution.max_workers = 4  # sync handlers only: login
    settings.scanning.disabled = True  # no CRD or namespace watching: the namespaces are given
    settings.process.ultimate_exiting_timeout = 60
    return settings


def run(config: OperatorConfig) -> None:
    import kopf

    from .handlers import build_registry
    from .kube import Credentials, Kube
    from .metrics import Metrics
    from .progress import ProgressEndpoint, server_context
    from .reconcile import Reconciler
    from .tokens import TokenVerifier

    kopf.configure(verbose=config.verbose, log_format=kopf.LogFormat.FULL)
    if not config.verbose:  # one line per handler call is too many at scale; our own lines say what changed
        for name in ("kopf.objects", "aiohttp.access"):
            logging.getLogger(name).setLevel(logging.WARNING)
    context = server_context(config.tls_cert_file, config.tls_key_file) if config.progress_port else None
    metrics = Metrics()
    metrics.serve(config.metrics_port, config.bind_address)
    kube = Kube(Credentials.load())
    reconciler = Reconciler(kube, config.trainer, metrics)
    endpoint = ProgressEndpoint(reconciler.intake, TokenVerifier(kube, on_review=metrics.token_reviews.inc), metrics)

    async def serve() -> None:
        if context is not None:
            await endpoint.start(config.bind_address, config.progress_port, context)

    async def unserve() -> None:
        await endpoint.stop()
        await kube.close()

    registry = build_registry(reconciler, serve, unserve, config.resync_seconds)

    liveness = (f"http://{config.bind_address}:{config.liveness_port}/healthz"
                if config.liveness_port else None)
    kopf.run(registry=registry, settings=settings_for(config), standalone=True,
             clusterwide=config.all_namespaces, namespaces=list(config.namespaces),
             liveness_endpoint=liveness)


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    try:
        config = from_args(args)
    except ConfigError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    try:
        run(config)
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # start-up failures (no kubeconfig, port in use): one line, not a traceback
        print(f"error: the operator stopped: {type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
              file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
