"""Delivery workers against the real PostgreSQL and real local receivers."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.backoff import Backoff
from services.notifier.catalog import CatalogCache
from services.notifier.channels import build_channels
from services.notifier.channels.base import Channel, DeliveryResult
from services.notifier.intake import record_breach
from services.notifier.message import Notification
from services.notifier.metrics import NotifierMetrics
from services.notifier.worker import DeliveryWorker, Doorbell, WorkerConfig
from shared import db
from shared.definitions.model import Receiver
from shared.settings import Settings
from shared.timeutil import wall_clock_ms
from tests.integration.notifier.support import (
    agreement_doc,
    apply_docs,
    eventually,
    receiver_doc,
    scalar,
)
from tests.unit.notifier.support import RecordingServer, make_breach

pytestmark = pytest.mark.integration


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def run_workers(
    engine: AsyncEngine,
    settings: Settings,
    http: httpx.AsyncClient,
    registry: CollectorRegistry,
    *,
    count: int,
    until: Any,
    channels: dict[str, Channel] | None = None,
    config: WorkerConfig | None = None,
) -> None:
    sessions = db.sessions(engine)
    catalog = CatalogCache(sessions, wall_clock_ms)
    await catalog.reload()
    doorbell = Doorbell()
    workers = [
        DeliveryWorker(
            f"w{i}",
            sessions,
            catalog,
            channels or build_channels(http, settings.delivery_timeout_ms),
            NotifierMetrics(registry) if i == 0 else _metrics_sink(),
            config or WorkerConfig.from_settings(settings),
            wall_clock_ms,
            lambda: 0.5,
            doorbell,
        )
        for i in range(count)
    ]
    stop = asyncio.Event()
    tasks = [asyncio.create_task(w.run(stop)) for w in workers]
    try:
        await eventually(until)
    finally:
        stop.set()
        doorbell.ring()
        await asyncio.wait_for(asyncio.gather(*tasks), 5)


def _metrics_sink() -> NotifierMetrics:
    return NotifierMetrics(CollectorRegistry())


async def enqueue(engine: AsyncEngine, receivers: list[str], **overrides: Any) -> None:
    async with db.sessions(engine)() as session, session.begin():
        await record_breach(session, make_breach(**overrides), receivers, wall_clock_ms())


async def delivery_status(engine: AsyncEngine) -> str | None:
    status = await scalar(engine, "SELECT status FROM deliveries")
    return status if status in ("delivered", "dead") else None


async def test_retries_until_delivered(
    engine: AsyncEngine, make_settings: Any, http: httpx.AsyncClient
) -> None:
    settings = make_settings(delivery_backoff_base_ms=20, delivery_backoff_max_ms=50)
    registry = CollectorRegistry()
    async with RecordingServer(statuses=[500, 500]) as server:
        await apply_docs(
            engine,
            receiver_doc("hook", server.url),
            agreement_doc([{"receivers": ["hook"]}]),
        )
        await enqueue(engine, ["hook"])
        await run_workers(
            engine, settings, http, registry, count=1, until=lambda: delivery_status(engine)
        )
    assert await scalar(engine, "SELECT status FROM deliveries") == "delivered"
    assert await scalar(engine, "SELECT attempts FROM deliveries") == 3
    outcomes = await scalar(
        engine,
        "SELECT string_agg(outcome || ':' || status_code, ',' ORDER BY attempt)"
        " FROM delivery_attempts",
    )
    assert outcomes == "retry:500,retry:500,delivered:200"
    keys = {r.headers["idempotency-key"] for r in server.requests}
    assert keys == {make_breach().event_key}
    assert server.requests[0].headers["x-team"] == "payments"
    sample = registry.get_sample_value
    assert sample("slawatch_notifications_total", {"channel": "webhook", "outcome": "retry"}) == 2
    assert (
        sample("slawatch_notifications_total", {"channel": "webhook", "outcome": "delivered"}) == 1
    )
    assert (
        sample("slawatch_delivery_failures_total", {"channel": "webhook", "reason": "http_5xx"})
        == 2
    )
    assert sample("slawatch_delivery_latency_seconds_count", {"channel": "webhook"}) == 1


async def test_client_error_is_dead_at_once(
    engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient
) -> None:
    async with RecordingServer(default=400) as server:
        await apply_docs(engine, receiver_doc("hook", server.url), agreement_doc([]))
        await enqueue(engine, ["hook"])
        await run_workers(
            engine,
            settings,
            http,
            CollectorRegistry(),
            count=1,
            until=lambda: delivery_status(engine),
        )
    assert await scalar(engine, "SELECT status FROM deliveries") == "dead"
    assert await scalar(engine, "SELECT count(*) FROM delivery_attempts") == 1
    assert len(server.requests) == 1


async def test_max_attempts_then_dead(
    engine: AsyncEngine, make_settings: Any, http: httpx.AsyncClient
) -> None:
    settings = make_settings(
        delivery_max_attempts=3, delivery_backoff_base_ms=10, delivery_backoff_max_ms=20
    )
    async with RecordingServer(default=503) as server:
        await apply_docs(engine, receiver_doc("hook", server.url), agreement_doc([]))
        await enqueue(engine, ["hook"])
        await run_workers(
            engine,
            settings,
            http,
            CollectorRegistry(),
            count=1,
            until=lambda: delivery_status(engine),
        )
    assert await scalar(engine, "SELECT status FROM deliveries") == "dead"
    assert await scalar(engine, "SELECT count(*) FROM delivery_attempts") == 3
    assert len(server.requests) == 3


async def test_unknown_receiver_is_retried_then_dead(
    engine: AsyncEngine, make_settings: Any, http: httpx.AsyncClient
) -> None:
    settings = make_settings(
        delivery_max_attempts=2, delivery_backoff_base_ms=10, delivery_backoff_max_ms=20
    )
    await enqueue(engine, ["nobody"])
    await run_workers(
        engine, settings, http, CollectorRegistry(), count=1, until=lambda: delivery_status(engine)
    )
    assert await scalar(engine, "SELECT status FROM deliveries") == "dead"
    assert (await scalar(engine, "SELECT last_error FROM deliveries")).startswith(
        "unknown_receiver:"
    )


async def test_many_workers_deliver_each_row_once(
    engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient
) -> None:
    async with RecordingServer() as server:
        names = [f"hook-{i}" for i in range(8)]
        await apply_docs(engine, *(receiver_doc(n, server.url) for n in names), agreement_doc([]))
        for i in range(5):
            await enqueue(engine, names, id=f"{i:032d}")

        async def all_delivered() -> bool:
            return (
                await scalar(engine, "SELECT count(*) FROM deliveries WHERE status='delivered'")
                == 40
            )

        await run_workers(engine, settings, http, CollectorRegistry(), count=4, until=all_delivered)
    assert len(server.requests) == 40
    pairs = {(r.headers["idempotency-key"], r.headers["x-team"]) for r in server.requests}
    assert len({k for k, _ in pairs}) == 5
    assert await scalar(engine, "SELECT count(*) FROM delivery_attempts") == 40


class HangingChannel:
    """A webhook channel that never answers."""

    name = "webhook"

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class BrokenChannel:
    """A webhook channel with a bug."""

    name = "webhook"

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        raise RuntimeError("bug")


@pytest.mark.parametrize(
    ("channel", "reason"),
    [(HangingChannel(), "timeout: delivery deadline exceeded"), (BrokenChannel(), "internal: ")],
)
async def test_worker_deadline_and_channel_bugs(
    engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient, channel: Any, reason: str
) -> None:
    config = WorkerConfig(
        max_attempts=2,
        backoff=Backoff(base_ms=10, max_ms=20),
        deadline_ms=200,
        lease_ms=1_000,
        poll_interval_ms=50,
    )
    await apply_docs(engine, receiver_doc("hook", "http://127.0.0.1:9/"), agreement_doc([]))
    await enqueue(engine, ["hook"])
    registry = CollectorRegistry()
    await run_workers(
        engine,
        settings,
        http,
        registry,
        count=1,
        until=lambda: delivery_status(engine),
        channels={"webhook": channel},
        config=config,
    )
    assert await scalar(engine, "SELECT status FROM deliveries") == "dead"
    assert (await scalar(engine, "SELECT last_error FROM deliveries")).startswith(reason)
    assert (
        registry.get_sample_value(
            "slawatch_notifications_total", {"channel": "webhook", "outcome": "dead"}
        )
        == 1
    )


async def test_a_failed_delivery_task_fails_its_worker(
    engine: AsyncEngine, settings: Settings, http: httpx.AsyncClient
) -> None:
    async def broken_sink(row: Any, channel: str, error: str) -> None:
        raise RuntimeError("dead letter topic gone")

    async with RecordingServer(default=400) as server:
        await apply_docs(engine, receiver_doc("hook", server.url), agreement_doc([]))
        await enqueue(engine, ["hook"])
        sessions = db.sessions(engine)
        catalog = CatalogCache(sessions, wall_clock_ms)
        await catalog.reload()
        worker = DeliveryWorker(
            "w",
            sessions,
            catalog,
            build_channels(http, settings.delivery_timeout_ms),
            _metrics_sink(),
            WorkerConfig.from_settings(settings),
            wall_clock_ms,
            lambda: 0.5,
            Doorbell(),
            on_dead=broken_sink,
        )
        with pytest.raises(RuntimeError, match="dead letter topic gone"):
            await asyncio.wait_for(worker.run(asyncio.Event()), 10)
    assert await scalar(engine, "SELECT status FROM deliveries") == "dead"
