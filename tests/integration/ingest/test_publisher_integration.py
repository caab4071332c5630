"""KafkaPublisher on the real broker: batches land on the partition the producer itself
would choose for each key, and every record is acknowledged."""

from __future__ import annotations

import pytest

from services.ingest.publisher import KafkaPublisher
from services.ingest.records import OutRecord
from shared import kafka
from shared.settings import Settings
from shared.topics import Topics

pytestmark = pytest.mark.integration


async def test_batches_use_the_producers_own_partitioning(settings: Settings) -> None:
    topic = Topics.from_settings(settings).events
    producer = kafka.producer(settings)
    await producer.start()
    try:
        keys = [f"svc-{i}".encode() for i in range(40)]
        big = b"x" * 40_000  # larger than a whole record batch: sent alone
        records = [OutRecord(topic, k, b"v" * 200) for k in keys] + [OutRecord(topic, b"k", big)]
        assert await KafkaPublisher(producer).send_all(records) == [None] * len(records)
        expected = {}
        for key in [*keys, b"k"]:
            metadata = await producer.send_and_wait(topic, b"probe", key=key)
            expected[key] = metadata.partition
    finally:
        await producer.stop()
    consumer = kafka.consumer(settings, topic, group_id=None)
    await consumer.start()
    try:
        seen: dict[bytes, set[int]] = {}
        count = 0
        for _ in range(30):
            batch = await consumer.getmany(timeout_ms=500)
            for records_of in batch.values():
                for r in records_of:
                    seen.setdefault(r.key, set()).add(r.partition)
                    count += 1
            if count >= 2 * len(expected):
                break
        assert count == 2 * len(expected)
    finally:
        await consumer.stop()
    assert seen == {key: {partition} for key, partition in expected.items()}
