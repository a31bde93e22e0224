"""Prometheus metrics of the operator (prometheus_client), served on --metrics-port at /metrics.

headstart_finetunejobs{phase}               FineTuneJobs this operator sees, by phase (a gauge)
headstart_reconcile_seconds                 time to reconcile a FineTuneJob (histogram)
headstart_operator_errors_total{kind}       errors by kind: api_<status>, invalid_spec, timeout, <Exception>
headstart_children_created_total{kind}      children created (a 409 is not counted)
headstart_progress_requests_total{code}     requests to the progress endpoint, by HTTP status
headstart_progress_seconds                  time to answer one (histogram)
headstart_token_reviews_total               TokenReviews sent for it (the cache's misses)
headstart_status_writes_total{writer}       status patches: verdict (the operator's own fields), progress
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

PHASES = ("Pending", "Running", "Succeeded", "Failed", "Suspended")


class _PhaseCollector:
    def __init__(self, phases: dict[tuple[str, str], str]):
        self.phases = phases

    def collect(self):
        family = GaugeMetricFamily("headstart_finetunejobs", "FineTuneJobs by phase", labels=["phase"])
        counts = dict.fromkeys(PHASES, 0)
        for phase in list(self.phases.values()):
            counts[phase] = counts.get(phase, 0) + 1
        for phase, count in counts.items():
            family.add_metric([phase], count)
        yield family


class Metrics:
    """One set of metrics in its own registry (no module-level globals: tests can make several)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.phases: dict[tuple[str, str], str] = {}
        self.registry.register(_PhaseCollector(self.phases))
        self.reconcile_seconds = Histogram(
            "headstart_reconcile_seconds", "Time to reconcile a FineTuneJob", registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0))
        self.errors = Counter("headstart_operator_errors", "Errors by kind", ["kind"], registry=self.registry)
        self.created = Counter("headstart_children_created", "Children created", ["kind"],
                               registry=self.registry)
        self.progress_requests = Counter("headstart_progress_requests", "Requests to the progress endpoint",
                                         ["code"], registry=self.registry)
        self.progress_seconds = Histogram(
            "headstart_progress_seconds", "Time to answer a progress request", registry=self.registry,
            buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0))
        self.token_reviews = Counter("headstart_token_reviews", "TokenReviews sent", registry=self.registry)
        self.status_writes = Counter("headstart_status_writes", "Status patches", ["writer"],
                                     registry=self.registry)

    def set_phase(self, namespace: str, name: str, phase: str | None) -> None:
        if phase is None:
            self.phases.pop((namespace, name), None)
        else:
            self.phases[(namespace, name)] = phase

    def error(self, kind: str) -> None:
        self.errors.labels(kind=kind).inc()

    def serve(self, port: int, address: str) -> None:
        """Serve /metrics in a background thread (prometheus_client's own server)."""
        if port:
            start_http_server(port, addr=address, registry=self.registry)
