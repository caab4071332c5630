"""The real broker and database: topics, migrations, a produce/consume round trip."""

from __future__ import annotations

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import kafka
from shared.schemas import Event
from shared.settings import Settings
from shared.topics import Topics, topic_partitions

pytestmark = pytest.mark.integration


async def test_migrations_create_every_table(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT tablename FROM pg_tables WHERE schemaname = 'public' ORDER BY 1")
        )
        tables = {r[0] for r in rows}
    assert {
        "definitions",
        "evaluator_checkpoints",
        "breaches",
        "breach_events",
        "deliveries",
        "delivery_attempts",
        "alembic_version",
    } <= tables


async def test_topics_have_configured_partitions(settings: Settings) -> None:
    admin = kafka.admin_client(settings)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topic_partitions(settings)))
    finally:
        await admin.close()
    counts = {t["topic"]: len(t["partitions"]) for t in described}
    assert counts == topic_partitions(settings)


async def test_event_round_trip_through_broker(settings: Settings) -> None:
    topics = Topics.from_settings(settings)
    sent = [
        Event(
            id=f"e{i}",
            service="checkout",
            type="request",
            time=1_700_000_000_000 + i,
            outcome="good",
        )
        for i in range(20)
    ]
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for event in sent:
            await producer.send_and_wait(topics.events, event.to_json(), key=event.service.encode())
    finally:
        await producer.stop()
    consumer = kafka.consumer(settings, topics.events, group_id=f"{settings.topic_prefix}-rt")
    await consumer.start()
    try:
        got: list[Event] = []
        while len(got) < len(sent):
            batch = await consumer.getmany(timeout_ms=5_000)
            assert batch, "no records within 5 s"
            for records in batch.values():
                got.extend(Event.from_json(r.value) for r in records)
    finally:
        await consumer.stop()
    # one key → one partition → order kept
    assert got == sent
