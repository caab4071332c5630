"""A stopping intake reads the breaches topic to its end: breach events the evaluator
published just before the notifier was stopped reach the outbox."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.catalog import CatalogCache
from services.notifier.intake import Intake
from services.notifier.metrics import NotifierMetrics
from shared import db, kafka
from shared.settings import Settings
from shared.timeutil import wall_clock_ms
from shared.topics import Topics
from tests.integration.notifier.support import scalar
from tests.unit.notifier.support import make_breach

pytestmark = pytest.mark.integration

BREACHES = 60


async def test_a_stopped_intake_drains_every_partition_to_its_end(
    engine: AsyncEngine, settings: Settings
) -> None:
    topics = Topics.from_settings(settings)
    producer = await kafka.start_producer(settings)
    consumer = kafka.consumer(settings, group_id=f"{settings.topic_prefix}-notifier")
    try:
        for i in range(BREACHES):
            breach = make_breach(id=f"{i:032x}", group={"customer": f"c{i}"})
            await producer.send(topics.breaches, breach.to_json(), key=breach.id.encode())
        await producer.flush()
        partitions = [
            TopicPartition(topics.breaches, p) for p in range(settings.breaches_partitions)
        ]
        consumer.assign(partitions)  # no group join to wait for; commits still work
        await consumer.start()
        sessions = db.sessions(engine)
        intake = Intake(
            consumer,
            producer,
            sessions,
            CatalogCache(sessions, wall_clock_ms, min_refresh_ms=0),
            NotifierMetrics(CollectorRegistry()),
            topics,
            wall_clock_ms,
            on_enqueued=lambda: None,
        )
        stop = asyncio.Event()
        stop.set()  # stopped before it read anything: all of it is the drain's work

        await intake.run(stop, drain_s=30.0)

        assert await scalar(engine, "SELECT count(*) FROM breach_events") == BREACHES
        for tp in partitions:
            assert await consumer.position(tp) == consumer.highwater(tp)
        committed = [await consumer.committed(tp) or 0 for tp in partitions]
        assert sum(committed) == BREACHES
    finally:
        await consumer.stop()
        await producer.stop()
