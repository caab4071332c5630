"""Prometheus metrics of the ingest service, on an injected registry.

Labels and their bounded values:

* ``path``: ``http`` | ``raw``
* ``reason`` (item): :data:`services.ingest.items.ITEM_REASONS`
* ``reason`` (request): :data:`services.ingest.problems.REQUEST_REASONS`
* ``flavour``: :data:`services.ingest.alerts.FLAVOURS`; ``reason`` (alert):
  :data:`services.ingest.alerts.ALERT_REASONS`

Every combination is created at zero so dashboards see the series from the start.
"""

from __future__ import annotations

from typing import Literal

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.ingest.alerts import ALERT_REASONS, FLAVOURS, AlertReason, Flavour
from services.ingest.items import ITEM_REASONS, ItemReason
from services.ingest.problems import REQUEST_REASONS, RequestReason
from shared.logid import offset_resets
from shared.metrics import LATENCY_BUCKETS_S

Path = Literal["http", "raw"]
PATHS: tuple[Path, ...] = ("http", "raw")
BATCH_BUCKETS = (1, 2, 5, 10, 25, 50, 100, 250, 500, 1_000, 2_500, 5_000, 10_000)


class IngestMetrics:
    """``slawatch_events_ingested_total``, ``slawatch_events_rejected_total``,
    ``slawatch_ingest_requests_rejected_total``, ``slawatch_ingest_batch_size``,
    ``slawatch_ingest_publish_seconds``, ``slawatch_ingest_duplicates_total``,
    ``slawatch_ingest_inflight_events``, ``slawatch_ingest_alerts_unmapped_total``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.offset_resets = offset_resets(registry)
        self.ingested = Counter(
            "slawatch_events_ingested",
            "Events acknowledged by the broker on the events topic.",
            ["path"],
            registry=registry,
        )
        self.rejected = Counter(
            "slawatch_events_rejected",
            "Items not turned into stored events, by reason (raw ones are dead-lettered).",
            ["path", "reason"],
            registry=registry,
        )
        self.requests_rejected = Counter(
            "slawatch_ingest_requests_rejected",
            "HTTP requests answered with a problem (4xx/5xx), by reason.",
            ["reason"],
            registry=registry,
        )
        self.batch_size = Histogram(
            "slawatch_ingest_batch_size",
            "Items per HTTP request or per raw-topic poll.",
            ["path"],
            buckets=BATCH_BUCKETS,
            registry=registry,
        )
        self.publish_seconds = Histogram(
            "slawatch_ingest_publish_seconds",
            "Time from producing a batch to the broker acknowledging all of it.",
            ["path"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.duplicates = Counter(
            "slawatch_ingest_duplicates",
            "HTTP events not produced again: their id was acknowledged within the horizon.",
            registry=registry,
        )
        self.inflight = Gauge(
            "slawatch_ingest_inflight_events",
            "HTTP events produced and not yet acknowledged (bounded by max_inflight).",
            registry=registry,
        )
        self.alerts_unmapped = Counter(
            "slawatch_ingest_alerts_unmapped",
            "Webhook alerts not mapped to an event, by flavour and reason (each also "
            "listed in the response and logged with its alertname).",
            ["flavour", "reason"],
            registry=registry,
        )
        for flavour in FLAVOURS:
            for alert_reason in ALERT_REASONS:
                self.alerts_unmapped.labels(flavour, alert_reason)
        for path in PATHS:
            self.ingested.labels(path)
            self.batch_size.labels(path)
            self.publish_seconds.labels(path)
            for item_reason in ITEM_REASONS:
                self.rejected.labels(path, item_reason)
        for request_reason in REQUEST_REASONS:
            self.requests_rejected.labels(request_reason)

    def count_ingested(self, path: Path, n: int) -> None:
        if n:
            self.ingested.labels(path).inc(n)

    def count_rejected(self, path: Path, reason: ItemReason, n: int = 1) -> None:
        if n:
            self.rejected.labels(path, reason).inc(n)

    def count_request_rejected(self, reason: RequestReason) -> None:
        self.requests_rejected.labels(reason).inc()

    def count_unmapped_alert(self, flavour: Flavour, reason: AlertReason) -> None:
        self.alerts_unmapped.labels(flavour, reason).inc()
