"""The whole notifier (``run``) on the real broker and PostgreSQL, with real receivers."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.main import run
from shared import kafka
from shared.deadletter import DeadLetter
from shared.errors import InfrastructureError
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.notifier.support import (
    agreement_doc,
    apply_docs,
    eventually,
    receiver_doc,
    scalar,
)
from tests.keys import bearer, stored_key
from tests.unit.notifier.support import RecordingServer, make_breach, unused_port

pytestmark = pytest.mark.integration


async def publish(settings: Settings, *values: bytes) -> None:
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for value in values:
            await producer.send_and_wait(
                Topics.from_settings(settings).breaches, value, key=b"acme-checkout/availability"
            )
    finally:
        await producer.stop()


async def dead_letters(settings: Settings, count: int) -> list[DeadLetter]:
    consumer = kafka.consumer(settings, group_id=None)
    await consumer.start()
    try:
        consumer.assign([TopicPartition(Topics.from_settings(settings).deadletter, 0)])
        letters: list[DeadLetter] = []
        async with asyncio.timeout(10):
            while len(letters) < count:
                batch = await consumer.getmany(timeout_ms=500)
                letters.extend(DeadLetter.from_json(r.value) for rs in batch.values() for r in rs)
        return letters
    finally:
        await consumer.stop()


async def test_duplicate_breach_is_delivered_once_and_retries_are_recorded(
    settings: Settings, make_settings: Any, engine: AsyncEngine
) -> None:
    settings = make_settings(
        notifier_port=unused_port(),
        delivery_backoff_base_ms=20,
        delivery_backoff_max_ms=50,
        delivery_poll_interval_ms=100,
        kafka_session_timeout_ms=3_000,
        kafka_heartbeat_interval_ms=300,
        shutdown_grace_s=3.0,
    )
    breach = make_breach()
    registry = CollectorRegistry()
    async with RecordingServer() as steady, RecordingServer(statuses=[500, 500]) as flaky:
        await apply_docs(
            engine,
            receiver_doc("steady", steady.url),
            receiver_doc("flaky", flaky.url),
            agreement_doc(
                [
                    {"match": {"severity": "page"}, "receivers": ["steady"], "continue": True},
                    {"match": {"customer": "acme"}, "receivers": ["flaky", "steady"]},
                    {"match": {"severity": "info"}, "receivers": ["flaky"]},
                ]
            ),
        )
        await publish(settings, breach.to_json(), b"not a breach", breach.to_json())
        stop = asyncio.Event()
        key = await stored_key(settings)
        service = asyncio.create_task(run(settings, stop, registry=registry))
        try:
            [request] = await steady.wait_for(1, timeout_s=15)
            await flaky.wait_for(3, timeout_s=10)

            async def both_delivered() -> bool:
                count = await scalar(
                    engine, "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
                )
                return bool(count == 2)

            await eventually(both_delivered)
            letters = await dead_letters(settings, 1)
            base = f"http://{settings.host}:{settings.notifier_port}"
            async with httpx.AsyncClient(base_url=base, headers=bearer(key)) as http:
                listed = (await http.get("/v1/breaches")).json()
                detail = (await http.get(f"/v1/breaches/{breach.id}")).json()
                metrics = (await http.get("/metrics")).text

                async def ready() -> httpx.Response | None:
                    # a check past its 0.8 s bound on a loaded machine says 503 once;
                    # the service must be ready, not fast under any load
                    answer = await http.get("/readyz")
                    return answer if answer.status_code == 200 else None

                readiness = await eventually(ready)
        finally:
            stop.set()
            await asyncio.wait_for(service, 10)

    assert request.headers["idempotency-key"] == breach.event_key
    assert len(steady.requests) == 1  # published twice, delivered once
    assert len(flaky.requests) == 3
    assert await scalar(engine, "SELECT count(*) FROM breaches") == 1
    assert await scalar(engine, "SELECT count(*) FROM breach_events") == 1
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 2
    assert await scalar(engine, "SELECT count(*) FROM delivery_attempts") == 4

    [letter] = letters
    assert (letter.rejected_by, letter.reason, letter.original) == (
        "notifier",
        "invalid_breach",
        b"not a breach",
    )

    assert [b["id"] for b in listed["items"]] == [breach.id]
    by_receiver = {d["receiver"]: d for d in detail["deliveries"]}
    assert [a["outcome"] for a in by_receiver["flaky"]["attempts_log"]] == [
        "retry",
        "retry",
        "delivered",
    ]
    assert by_receiver["steady"]["status"] == "delivered"
    assert readiness.json()["ready"] is True, readiness.text
    assert 'slawatch_breach_events_received_total{kind="breach.opened"} 2.0' in metrics
    assert 'slawatch_notifications_total{channel="webhook",outcome="delivered"} 2.0' in metrics
    assert "slawatch_outbox_pending " in metrics


async def test_task_failure_is_reraised(settings: Settings, make_settings: Any) -> None:
    settings = make_settings(notifier_port=unused_port())
    # Occupy the notifier's port: the HTTP server cannot start, and run() must fail.
    blocker = await asyncio.start_server(lambda r, w: None, settings.host, settings.notifier_port)
    try:
        with pytest.raises(InfrastructureError, match="could not start"):
            await asyncio.wait_for(run(settings, asyncio.Event()), 15)
    finally:
        blocker.close()
        await blocker.wait_closed()


async def test_stop_lets_an_inflight_delivery_finish(
    settings: Settings, make_settings: Any, engine: AsyncEngine
) -> None:
    settings = make_settings(notifier_port=unused_port(), shutdown_grace_s=5.0)
    breach = make_breach()
    async with RecordingServer(delay_s=1.0) as slow:
        await apply_docs(
            engine, receiver_doc("slow", slow.url), agreement_doc([{"receivers": ["slow"]}])
        )
        await publish(settings, breach.to_json())
        stop = asyncio.Event()
        service = asyncio.create_task(run(settings, stop))
        try:
            await slow.wait_for(1, timeout_s=15)  # the receiver is answering, slowly
        finally:
            stop.set()
            await asyncio.wait_for(service, 10)
    assert await scalar(engine, "SELECT status FROM deliveries") == "delivered"
    assert await scalar(engine, "SELECT count(*) FROM delivery_attempts") == 1


async def test_changed_routes_apply_promptly(
    settings: Settings, make_settings: Any, engine: AsyncEngine
) -> None:
    settings = make_settings(notifier_port=unused_port(), shutdown_grace_s=3.0)
    async with RecordingServer() as a, RecordingServer() as b:
        await apply_docs(
            engine,
            receiver_doc("a", a.url),
            receiver_doc("b", b.url),
            agreement_doc([{"receivers": ["a"]}]),
        )
        stop = asyncio.Event()
        service = asyncio.create_task(run(settings, stop))
        try:
            await publish(settings, make_breach(id="0" * 32).to_json())
            await a.wait_for(1, timeout_s=15)
            await apply_docs(engine, agreement_doc([{"receivers": ["b"]}]))
            changed_at = asyncio.get_running_loop().time()
            sent = iter(range(1, 1_000))

            async def reaches_b() -> bool:
                await publish(settings, make_breach(id=f"{next(sent):032d}").to_json())
                return bool(b.requests)

            # Well under the 5 s periodic reload: the NOTIFY watcher did it.
            await eventually(reaches_b, timeout_s=3, every_s=0.1)
            took = asyncio.get_running_loop().time() - changed_at
        finally:
            stop.set()
            await asyncio.wait_for(service, 10)
    assert took < 3
