"""Metric names, bounded labels, and series present from the start."""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from services.ingest.items import ITEM_REASONS
from services.ingest.metrics import IngestMetrics
from services.ingest.problems import REQUEST_REASONS


def test_every_series_exists_at_zero() -> None:
    registry = CollectorRegistry()
    IngestMetrics(registry)
    for path in ("http", "raw"):
        assert registry.get_sample_value("slawatch_events_ingested_total", {"path": path}) == 0
        assert registry.get_sample_value("slawatch_ingest_batch_size_count", {"path": path}) == 0
        assert (
            registry.get_sample_value("slawatch_ingest_publish_seconds_count", {"path": path}) == 0
        )
        for reason in ITEM_REASONS:
            labels = {"path": path, "reason": reason}
            assert registry.get_sample_value("slawatch_events_rejected_total", labels) == 0
    for reason in REQUEST_REASONS:
        labels = {"reason": reason}
        assert registry.get_sample_value("slawatch_ingest_requests_rejected_total", labels) == 0


def test_counting() -> None:
    registry = CollectorRegistry()
    metrics = IngestMetrics(registry)
    metrics.count_ingested("raw", 3)
    metrics.count_rejected("http", "not_an_object", 2)
    metrics.count_rejected("http", "not_an_object", 0)
    metrics.count_request_rejected("body_too_large")
    assert registry.get_sample_value("slawatch_events_ingested_total", {"path": "raw"}) == 3
    rejected = {"path": "http", "reason": "not_an_object"}
    assert registry.get_sample_value("slawatch_events_rejected_total", rejected) == 2
    too_large = {"reason": "body_too_large"}
    assert registry.get_sample_value("slawatch_ingest_requests_rejected_total", too_large) == 1
