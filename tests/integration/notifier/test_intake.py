"""Intake's handling of one record: stored, dead-lettered, or recorded without routes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.catalog import CatalogCache
from services.notifier.intake import Intake
from services.notifier.metrics import NotifierMetrics
from shared import db, kafka
from shared.deadletter import DeadLetter
from shared.settings import Settings
from shared.timeutil import wall_clock_ms
from shared.topics import Topics
from tests.integration.notifier.support import agreement_doc, apply_docs, receiver_doc, scalar
from tests.unit.notifier.support import make_breach

pytestmark = pytest.mark.integration


@dataclass(frozen=True)
class Record:
    """The fields of an aiokafka ConsumerRecord that intake reads."""

    value: bytes | None
    topic: str = "t.breaches"
    partition: int = 1
    offset: int = 42


@pytest.fixture
async def producer(settings: Settings) -> AsyncIterator[AIOKafkaProducer]:
    started = kafka.producer(settings)
    await started.start()
    try:
        yield started
    finally:
        await started.stop()


def intake(
    engine: AsyncEngine, settings: Settings, producer: AIOKafkaProducer, rang: list[int]
) -> Intake:
    sessions = db.sessions(engine)
    return Intake(
        consumer=None,
        producer=producer,
        sessions=sessions,
        catalog=CatalogCache(sessions, wall_clock_ms, min_refresh_ms=0),
        metrics=NotifierMetrics(CollectorRegistry()),
        topics=Topics.from_settings(settings),
        clock=wall_clock_ms,
        on_enqueued=lambda: rang.append(1),
    )


async def read_dead_letters(settings: Settings, count: int) -> list[DeadLetter]:
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


async def test_routed_breach_enqueues_for_each_receiver(
    engine: AsyncEngine, settings: Settings, producer: AIOKafkaProducer
) -> None:
    # Applied after the catalog was built: found by the reload on a miss.
    stage = intake(engine, settings, producer, [])
    await apply_docs(
        engine,
        receiver_doc("a", "http://127.0.0.1:9/"),
        receiver_doc("b", "http://127.0.0.1:9/"),
        agreement_doc(
            [
                {"receivers": ["a"], "continue": True},
                {"match": {"severity": "page"}, "receivers": ["b"]},
            ]
        ),
    )
    assert await stage.handle(Record(make_breach().to_json())) == 2
    assert await stage.handle(Record(make_breach().to_json())) == 0
    assert (
        await scalar(engine, "SELECT string_agg(receiver, ',' ORDER BY receiver) FROM deliveries")
        == "a,b"
    )


async def test_unknown_agreement_is_recorded_without_deliveries(
    engine: AsyncEngine, settings: Settings, producer: AIOKafkaProducer
) -> None:
    stage = intake(engine, settings, producer, [])
    assert await stage.handle(Record(make_breach().to_json())) == 0
    assert await scalar(engine, "SELECT count(*) FROM breaches") == 1
    assert await scalar(engine, "SELECT count(*) FROM breach_events") == 1
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 0


async def test_bad_records_go_to_the_dead_letter_topic(
    engine: AsyncEngine, settings: Settings, producer: AIOKafkaProducer
) -> None:
    stage = intake(engine, settings, producer, [])
    too_long = make_breach(service="s" * 100).to_json()
    assert await stage.handle(Record(b'{"id": 1}', offset=7)) == 0
    assert await stage.handle(Record(None, offset=8)) == 0
    assert await stage.handle(Record(too_long, offset=9)) == 0
    nul = make_breach(group={"customer": "a\x00b"}).to_json()  # PostgreSQL refuses NUL
    assert await stage.handle(Record(nul, offset=10)) == 0
    letters = await read_dead_letters(settings, 4)
    assert [(d.reason, d.offset, d.rejected_by) for d in letters] == [
        ("invalid_breach", 7, "notifier"),
        ("invalid_breach", 8, "notifier"),
        ("unstorable_breach", 9, "notifier"),
        ("unstorable_breach", 10, "notifier"),
    ]
    assert letters[0].original == b'{"id": 1}'
    assert letters[0].detail is not None and "id" in letters[0].detail
    assert (letters[2].topic, letters[2].partition, letters[2].original) == (
        "t.breaches",
        1,
        too_long,
    )
    assert await scalar(engine, "SELECT count(*) FROM breaches") == 0
    assert letters[2].detail == "too long: service"
