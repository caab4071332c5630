"""Ingest's bounds come from settings (``services.ingest.main.http_limits``)."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.api import IngestDeps, create_app
from services.ingest.main import http_limits
from services.ingest.metrics import IngestMetrics
from shared.settings import Settings
from tests.keys import api_client, static_auth
from tests.unit.ingest.test_api import NOW, TOPICS, FakePublisher


def test_defaults_of_the_deps_are_the_settings_defaults() -> None:
    fields = {f.name: f.default for f in dataclasses.fields(IngestDeps)}
    for name, value in http_limits(Settings()).items():
        if name not in ("max_body_bytes", "max_batch_items"):  # required fields
            assert fields[name] == value, name


def test_every_limit_is_passed() -> None:
    s = Settings(
        max_body_bytes=4096,
        max_batch_items=3,
        ingest_max_inflight=5,
        ingest_publish_timeout_s=0.5,
        ingest_overload_cooldown_ms=20,
        ingest_dedup_capacity=2,
        ingest_dedup_horizon_ms=1_000,
    )
    assert http_limits(s) == {
        "max_body_bytes": 4096,
        "max_batch_items": 3,
        "max_inflight": 5,
        "publish_timeout_s": 0.5,
        "overload_cooldown_ms": 20,
        "dedup_capacity": 2,
        "dedup_horizon_ms": 1_000,
        "max_future_skew_ms": 300_000,
    }


class Ingest:
    def __init__(self, client: httpx.AsyncClient, timer: list[int]) -> None:
        self.client = client
        self.timer = timer

    async def duplicate(self, event_id: str) -> bool:
        event = {"id": event_id, "service": "s", "type": "request", "time": 1_700_000_000_001}
        body = orjson.dumps(event)
        response = await self.client.post(
            "/v1/events", content=body, headers={"content-type": "application/json"}
        )
        assert response.status_code == 202
        return bool(response.json()["results"][0].get("duplicate", False))


@pytest.fixture
async def ingest() -> AsyncIterator[Ingest]:
    timer = [0]
    registry = CollectorRegistry()
    settings = Settings(ingest_dedup_capacity=2, ingest_dedup_horizon_ms=1_000)
    deps = IngestDeps(
        publisher=FakePublisher(),
        topics=TOPICS,
        metrics=IngestMetrics(registry),
        clock=lambda: NOW,
        timer=lambda: timer[0],
        **http_limits(settings),
    )
    app = create_app(deps, registry, {}, auth=static_auth())
    async with api_client(app, "http://ingest") as client:
        yield Ingest(client, timer)


async def test_the_configured_dedup_horizon_and_capacity_hold(ingest: Ingest) -> None:
    assert not await ingest.duplicate("a")
    ingest.timer[0] = 999
    assert await ingest.duplicate("a")
    ingest.timer[0] = 1_000  # the horizon has passed
    assert not await ingest.duplicate("a")
    assert not await ingest.duplicate("b")
    assert not await ingest.duplicate("c")  # a third id: "a" is forgotten (capacity 2)
    assert not await ingest.duplicate("a")
