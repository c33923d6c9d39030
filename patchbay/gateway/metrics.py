"""Prometheus metrics of one gateway app, in a registry of its own (never the global one).

Exported (all prefixed ``patchbay_``):

* ``http_requests_total{method,route,status}`` and ``http_request_duration_seconds{method,route}``
  (``route`` is the route template, e.g. ``/v1/entities/{entity}/records``, never the raw path);
* ``records_served_total{entity}``;
* ``records_quarantined_total{entity,source}``, ``fields_nulled_total{entity,source}``: data
  quality of what was read for the gateway's callers;
* ``source_errors_total{source}``: failed source reads seen by the gateway (partial or not);
* ``source_events_total{event,source}``: the resilience layer's counters of the Hub (retries,
  give-ups, rate-limit waits, breaker transitions, fast fails) read at scrape time;
* ``source_breaker_open{source}``: 1 while the source's breaker has opened more often than it has
  closed since start, i.e. it is open or half-open now.

With ``--workers N`` each worker process counts its own requests: a scrape reaches one worker.
Scrape each worker (or run one worker per container), or sum over the ``instance`` label.
"""

from __future__ import annotations

from collections.abc import Iterable

from prometheus_client import CollectorRegistry, Counter, Histogram, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.registry import Collector

from patchbay.core.quality import QualityReport, SourceFailure
from patchbay.resilience import Events

__all__ = ["CONTENT_TYPE", "GatewayMetrics"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


class _EventsCollector(Collector):
    def __init__(self, events: Events) -> None:
        self._events = events

    def collect(self) -> Iterable[Metric]:
        counters = self._events.counters
        total = CounterMetricFamily(
            "patchbay_source_events",
            "Resilience events of the sources (retries, waits, breaker transitions)",
            labels=["event", "source"],
        )
        breaker = GaugeMetricFamily(
            "patchbay_source_breaker_open",
            "1 while the source's circuit breaker is open or half-open",
            labels=["source"],
        )
        opened: dict[str, int] = {}
        closed: dict[str, int] = {}
        for (counter, source), value in sorted(counters.items()):
            total.add_metric([counter, source], value)
            if counter == "breaker_opened":
                opened[source] = value
            elif counter == "breaker_closed":
                closed[source] = value
        for source in sorted(opened):
            breaker.add_metric([source], 1.0 if opened[source] > closed.get(source, 0) else 0.0)
        yield total
        yield breaker


class GatewayMetrics:
    def __init__(self, events: Events, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter(
            "patchbay_http_requests", "HTTP requests", ["method", "route", "status"], registry=r
        )
        self.latency = Histogram(
            "patchbay_http_request_duration_seconds",
            "Time to answer an HTTP request",
            ["method", "route"],
            registry=r,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
        )
        self.records = Counter(
            "patchbay_records_served", "Records returned to callers", ["entity"], registry=r
        )
        self.quarantined = Counter(
            "patchbay_records_quarantined",
            "Rows kept aside because they failed validation",
            ["entity", "source"],
            registry=r,
        )
        self.nulled = Counter(
            "patchbay_fields_nulled",
            "Optional fields set to null because their value was invalid",
            ["entity", "source"],
            registry=r,
        )
        self.source_errors = Counter(
            "patchbay_source_errors", "Failed source reads", ["source"], registry=r
        )
        r.register(_EventsCollector(events))

    def observe_request(self, method: str, route: str, status: int, seconds: float) -> None:
        self.requests.labels(method, route, str(status)).inc()
        self.latency.labels(method, route).observe(seconds)

    def observe_read(
        self,
        entity: str,
        served: int,
        quality: QualityReport | None = None,
        errors: Iterable[SourceFailure] = (),
    ) -> None:
        if served:
            self.records.labels(entity).inc(served)
        if quality is not None:
            for source, stats in quality.sources.items():
                if stats.quarantined:
                    self.quarantined.labels(entity, source).inc(stats.quarantined)
                nulled = sum(stats.nulled.values())
                if nulled:
                    self.nulled.labels(entity, source).inc(nulled)
        for failure in errors:
            self.source_errors.labels(failure.source).inc()

    def source_failed(self, source: str) -> None:
        self.source_errors.labels(source).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
