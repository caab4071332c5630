"""Garbage on the raw topic, through the real broker: the raw loop dead-letters each
record with its reason and keeps consuming (the good records after the garbage arrive
on the events topic, and the loop is still running afterwards).

The bug this pins: ``"time": 18446744073709551616`` on the raw topic used to stop
ingest (the event could not be encoded), so one record stopped the raw path for good.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import KafkaPublisher
from services.ingest.raw_consumer import RawConsumer, group_id
from shared import kafka
from shared.deadletter import DeadLetter
from shared.schemas import Event
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.ingest.conftest import read_topic

pytestmark = pytest.mark.integration

NOW = 1_800_000_000_000
T0 = 1_790_000_000_000

GARBAGE: list[tuple[bytes, str]] = [
    (b'{"service":"s","type":"t","time":18446744073709551616}', "invalid_event"),
    (b'{"service":"s","type":"t","time":9223372036854775808}', "invalid_event"),
    (b'{"service":"s","type":"t","time":%d}' % (NOW + 86_400_000), "future"),
    (b'{"service":"s","type":"t","value":NaN}', "invalid_json"),
    (b"\xff\xfe\x00 binary", "invalid_json"),
    (b"[" * 10_000, "invalid_json"),
    (b'{"service":"s","type":"t","attributes":{"k":"\\u0000"}}', "invalid_event"),
    (b"[1, 2]", "not_an_object"),
]


def good(i: int) -> bytes:
    return orjson.dumps({"id": f"g{i}", "service": "checkout", "type": "request", "time": T0 + i})


async def test_raw_loop_dead_letters_garbage_and_keeps_consuming(settings: Settings) -> None:
    topics = Topics.from_settings(settings)
    registry = CollectorRegistry()
    producer = await kafka.start_producer(settings)
    consumer = kafka.consumer(settings, group_id=group_id(settings.topic_prefix))
    raw = RawConsumer(
        consumer, KafkaPublisher(producer), topics, IngestMetrics(registry), lambda: NOW
    )
    stop = asyncio.Event()
    loop = asyncio.create_task(raw.run(stop))
    try:
        records = [good(0), *(value for value, _ in GARBAGE), good(1)]
        for value in records:
            await producer.send_and_wait(topics.raw, value, partition=0)
        events = [Event.from_json(v) for _, v in await read_topic(settings, topics.events, 2)]
        assert [e.id for e in events] == ["g0", "g1"]
        letters = [
            DeadLetter.from_json(v)
            for _, v in await read_topic(settings, topics.deadletter, len(GARBAGE))
        ]
        assert [(d.offset, d.reason) for d in letters] == [
            (offset, reason) for offset, (_, reason) in enumerate(GARBAGE, start=1)
        ]
        assert all(d.detail and d.rejected_by == "ingest.raw" for d in letters)
        assert "time" in (letters[0].detail or "")
        assert not loop.done(), "the raw loop stopped on garbage"

        # still consuming: one more good record after all of it
        await producer.send_and_wait(topics.raw, good(2), partition=0)
        later = await read_topic(settings, topics.events, 3)
        assert [Event.from_json(v).id for _, v in later] == ["g0", "g1", "g2"]
        assert not loop.done()
    finally:
        stop.set()
        await asyncio.wait_for(loop, 30)
        await producer.stop()
