"""Delivery scenarios the issue names, against real receivers, the real broker and
PostgreSQL: receiver down then up, 500 x3 then 200, 410, an open circuit, two replicas."""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.config import NotifierSettings
from services.notifier.main import run
from shared.settings import Settings
from tests.integration.notifier.support import (
    agreement_doc,
    apply_docs,
    eventually,
    receiver_doc,
    scalar,
)
from tests.integration.notifier.test_service import dead_letters, publish
from tests.integration.notifier.test_worker import delivery_status, enqueue, run_workers
from tests.unit.notifier.support import RecordingServer, make_breach, unused_port

pytestmark = pytest.mark.integration


@pytest.fixture
async def http() -> Any:
    async with httpx.AsyncClient() as client:
        yield client


async def test_receiver_down_then_up_is_delivered_once(
    engine: AsyncEngine, make_settings: Any, http: httpx.AsyncClient
) -> None:
    settings = make_settings(delivery_backoff_base_ms=60, delivery_backoff_max_ms=120)
    port = unused_port()
    server = RecordingServer(port=port)
    await apply_docs(
        engine,
        receiver_doc("hook", f"http://127.0.0.1:{port}/hook"),
        agreement_doc([{"receivers": ["hook"]}]),
    )
    await enqueue(engine, ["hook"])

    async def attempts(n: int) -> bool:
        return bool(await scalar(engine, "SELECT count(*) FROM delivery_attempts") >= n)

    workers = asyncio.create_task(
        run_workers(
            engine, settings, http, CollectorRegistry(), count=2,
            until=lambda: delivery_status(engine),
        )
    )  # fmt: skip
    try:
        await eventually(lambda: attempts(2))  # refused twice: the receiver is down
        async with server:
            await workers
    finally:
        workers.cancel()
    assert await scalar(engine, "SELECT status FROM deliveries") == "delivered"
    assert len(server.requests) == 1
    outcomes = await scalar(
        engine, "SELECT string_agg(outcome, ',' ORDER BY attempt) FROM delivery_attempts"
    )
    assert outcomes.endswith("retry,delivered") and outcomes.count("delivered") == 1
    errors = await scalar(
        engine, "SELECT string_agg(DISTINCT split_part(error, ':', 1), ',') FROM delivery_attempts"
    )
    assert errors == "connection"


async def test_three_500s_then_200_is_one_success_after_backoff(
    engine: AsyncEngine, make_settings: Any, http: httpx.AsyncClient
) -> None:
    # random() is 0.5 in run_workers: waits are half the ceilings, 40, 80, 160 ms.
    settings = make_settings(delivery_backoff_base_ms=80, delivery_backoff_max_ms=10_000)
    async with RecordingServer(statuses=[500, 500, 500]) as server:
        await apply_docs(
            engine, receiver_doc("hook", server.url), agreement_doc([{"receivers": ["hook"]}])
        )
        await enqueue(engine, ["hook"])
        await run_workers(
            engine, settings, http, CollectorRegistry(), count=1,
            until=lambda: delivery_status(engine),
        )  # fmt: skip
    assert len(server.requests) == 4
    assert len({r.headers["idempotency-key"] for r in server.requests}) == 1
    rows = await scalar(
        engine,
        "SELECT string_agg(outcome || ':' || status_code || ':'"
        " || (extract(epoch FROM attempted_at) * 1000)::bigint, ',' ORDER BY attempt)"
        " FROM delivery_attempts",
    )
    parsed = [part.split(":") for part in rows.split(",")]
    assert [(o, c) for o, c, _ in parsed] == [
        ("retry", "500"), ("retry", "500"), ("retry", "500"), ("delivered", "200")
    ]  # fmt: skip
    times = [int(t) for _, _, t in parsed]
    gaps = [b - a for a, b in itertools.pairwise(times)]
    assert [g >= want for g, want in zip(gaps, [40, 80, 160], strict=True)] == [True] * 3
    assert await scalar(engine, "SELECT count(*) FROM deliveries WHERE status='delivered'") == 1


async def test_gone_is_dead_without_retries_counted_and_dead_lettered(
    settings: Settings, make_settings: Any, engine: AsyncEngine
) -> None:
    settings = make_settings(notifier_port=unused_port(), shutdown_grace_s=3.0)
    breach = make_breach()
    registry = CollectorRegistry()
    async with RecordingServer(default=410) as gone:
        await apply_docs(
            engine, receiver_doc("gone", gone.url), agreement_doc([{"receivers": ["gone"]}])
        )
        await publish(settings, breach.to_json())
        stop = asyncio.Event()
        service = asyncio.create_task(run(settings, stop, registry=registry))
        try:
            [letter] = await dead_letters(settings, 1)
        finally:
            stop.set()
            await asyncio.wait_for(service, 10)
    assert len(gone.requests) == 1
    assert await scalar(engine, "SELECT status FROM deliveries") == "dead"
    assert await scalar(engine, "SELECT count(*) FROM delivery_attempts") == 1
    assert (letter.rejected_by, letter.reason) == ("notifier", "delivery_dead")
    assert letter.detail is not None and "receiver gone (webhook)" in letter.detail
    assert "http_4xx: HTTP 410" in letter.detail
    assert letter.original.startswith(b"{") and breach.id.encode() in letter.original
    assert (
        registry.get_sample_value(
            "slawatch_deliveries_dead_total", {"channel": "webhook", "reason": "http_4xx"}
        )
        == 1
    )


async def test_open_circuit_defers_without_spending_attempts(
    settings: Settings, make_settings: Any, engine: AsyncEngine
) -> None:
    base = make_settings(
        notifier_port=unused_port(),
        delivery_backoff_base_ms=10,
        delivery_backoff_max_ms=20,
        delivery_max_attempts=3,
    )
    settings = NotifierSettings(**base.model_dump(), circuit_threshold=2, circuit_open_ms=60_000)
    registry = CollectorRegistry()
    async with RecordingServer(default=503) as down:
        await apply_docs(
            engine, receiver_doc("down", down.url), agreement_doc([{"receivers": ["down"]}])
        )
        await publish(settings, *(make_breach(id=f"{i:032d}").to_json() for i in range(2)))
        stop = asyncio.Event()
        service = asyncio.create_task(run(settings, stop, registry=registry))
        try:

            async def metric(name: str, at_least: int, **labels: str) -> bool:
                return (registry.get_sample_value(name, labels) or 0) >= at_least

            await eventually(lambda: metric("slawatch_circuit_changes_total", 1, change="opened"))
            await publish(settings, *(make_breach(id=f"{i:032d}").to_json() for i in range(2, 6)))
            await eventually(lambda: metric("slawatch_circuit_deferrals_total", 6), timeout_s=15)
        finally:
            stop.set()
            await asyncio.wait_for(service, 10)
    # Two failures opened the circuit; the other rows wait for it with attempts intact.
    # Each of the two workers may have had one request in flight when it opened.
    sent = len(down.requests)
    assert 2 <= sent <= 3
    assert await scalar(engine, "SELECT count(*) FROM deliveries WHERE status = 'dead'") == 0
    assert await scalar(engine, "SELECT sum(attempts) FROM deliveries") == sent
    assert registry.get_sample_value("slawatch_circuit_changes_total", {"change": "opened"}) == 1


async def healthy(settings: Settings) -> bool:
    try:
        async with httpx.AsyncClient() as client:
            url = f"http://{settings.host}:{settings.notifier_port}/healthz"
            return (await client.get(url)).status_code == 200
    except httpx.TransportError:
        return False


async def test_two_replicas_deliver_each_notification_once(
    settings: Settings, make_settings: Any, engine: AsyncEngine
) -> None:
    first = make_settings(notifier_port=unused_port(), shutdown_grace_s=3.0)
    second = make_settings(notifier_port=unused_port(), shutdown_grace_s=3.0)
    assert first.topic_prefix == second.topic_prefix
    count = 30
    async with RecordingServer(delay_s=0.01) as a, RecordingServer(delay_s=0.01) as b:
        await apply_docs(
            engine,
            receiver_doc("a", a.url),
            receiver_doc("b", b.url),
            agreement_doc([{"receivers": ["a", "b"]}]),
        )
        stop = asyncio.Event()
        replicas = [asyncio.create_task(run(first, stop))]
        try:
            # Alembic's module-level context is not thread-safe: in one process, migrate
            # one replica at a time (real replicas are separate processes).
            await eventually(lambda: healthy(first), timeout_s=20)
            replicas.append(asyncio.create_task(run(second, stop)))
            await eventually(lambda: healthy(second), timeout_s=20)
            await publish(first, *(make_breach(id=f"{i:032d}").to_json() for i in range(count)))
            await a.wait_for(count, timeout_s=30)
            await b.wait_for(count, timeout_s=30)

            async def settled() -> bool:
                done = await scalar(
                    engine, "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
                )
                return bool(done == 2 * count)

            await eventually(settled)
        finally:
            stop.set()
            await asyncio.wait_for(asyncio.gather(*replicas), 15)
    for server in (a, b):
        keys = [r.headers["idempotency-key"] for r in server.requests]
        assert len(keys) == count == len(set(keys))
    assert await scalar(engine, "SELECT count(*) FROM delivery_attempts") == 2 * count
