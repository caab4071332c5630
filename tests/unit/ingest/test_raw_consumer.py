"""The raw loop with a fake consumer and publisher: order produce → ack → commit."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
import pytest
from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError
from prometheus_client import CollectorRegistry

from services.ingest.exceptions import PublishError
from services.ingest.metrics import IngestMetrics
from services.ingest.raw_consumer import RawConsumer, group_id
from services.ingest.records import OutRecord
from shared.deadletter import DeadLetter
from shared.kafka import FinishBatchOnRevoke
from shared.logid import ShortLogJudge
from shared.schemas import Event
from shared.topics import Topics

TOPICS = Topics.from_prefix("u")
TP0 = TopicPartition(TOPICS.raw, 0)
TP1 = TopicPartition(TOPICS.raw, 1)
NOW = 1_800_000_000_000
GOOD = orjson.dumps({"id": "a", "service": "pay", "type": "request", "time": 1_700_000_000_001})


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    value: bytes | None


def batch(tp: TopicPartition, *values: bytes | None, first: int = 0) -> dict[Any, list[Message]]:
    return {tp: [Message(tp.topic, tp.partition, first + i, v) for i, v in enumerate(values)]}


@dataclass
class FakeConsumer:
    """Hands out ``batches``, then sets ``done``; records the commits."""

    batches: list[dict[Any, list[Message]]]
    done: asyncio.Event
    commit_error: Exception | None = None
    assigned: set[Any] = field(default_factory=lambda: {TP0, TP1})
    commits: list[dict[Any, int]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)
    highwaters: dict[Any, int] = field(default_factory=dict)

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.log.append(f"subscribe {topics}")

    async def start(self) -> None:
        self.log.append("start")

    async def stop(self) -> None:
        self.log.append("stop")

    async def getmany(self, timeout_ms: int, max_records: int) -> dict[Any, list[Message]]:
        if self.batches:
            return self.batches.pop(0)
        self.done.set()
        return {}

    def assignment(self) -> set[Any]:
        return self.assigned

    def highwater(self, tp: Any) -> int | None:
        return self.highwaters.get(tp)

    async def seek_to_beginning(self, *partitions: Any) -> bool:
        self.log.extend(f"seek_to_beginning {tp.partition}" for tp in partitions)
        return True

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.log.append("commit")
        if self.commit_error is not None:
            raise self.commit_error
        self.commits.append(offsets)


@dataclass
class FlakyPublisher:
    """Fails each record's first ``failures`` attempts; logs every call."""

    log: list[str]
    failures: int = 0
    sent: list[OutRecord] = field(default_factory=list)
    attempts: dict[bytes, int] = field(default_factory=dict)

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        self.log.append(f"send {len(records)}")
        outcomes: list[str | None] = []
        for record in records:
            seen = self.attempts.get(record.value, 0)
            self.attempts[record.value] = seen + 1
            if seen < self.failures:
                outcomes.append("NotLeaderForPartitionError")
            else:
                self.sent.append(record)
                outcomes.append(None)
        return outcomes

    async def ready(self) -> bool:
        return True


def make(
    batches: list[dict[Any, list[Message]]], failures: int = 0
) -> tuple[RawConsumer, FakeConsumer, FlakyPublisher, CollectorRegistry, asyncio.Event]:
    stop = asyncio.Event()
    consumer = FakeConsumer(batches, stop)
    publisher = FlakyPublisher(consumer.log, failures)
    registry = CollectorRegistry()
    raw = RawConsumer(
        consumer, publisher, TOPICS, IngestMetrics(registry), lambda: NOW, retry_backoff_s=0
    )
    return raw, consumer, publisher, registry, stop


async def test_routes_produces_then_commits_next_offsets() -> None:
    batches = [batch(TP0, GOOD, b"nope", first=10) | batch(TP1, b"{}", first=3)]
    raw, consumer, publisher, registry, stop = make(batches)
    await raw.run(stop)
    assert consumer.log == [f"subscribe ['{TOPICS.raw}']", "start", "send 3", "commit", "stop"]
    assert consumer.commits == [{TP0: 12, TP1: 4}]
    assert [r.topic for r in publisher.sent] == [
        TOPICS.events,
        TOPICS.deadletter,
        TOPICS.deadletter,
    ]
    assert Event.from_json(publisher.sent[0].value).received_at == NOW
    letters = [DeadLetter.from_json(r.value) for r in publisher.sent[1:]]
    assert [(d.partition, d.offset, d.reason) for d in letters] == [
        (0, 11, "invalid_json"),
        (1, 3, "invalid_event"),
    ]

    def sample(name: str, **labels: str) -> float | None:
        return registry.get_sample_value(name, labels)

    assert sample("slawatch_events_ingested_total", path="raw") == 1
    assert sample("slawatch_events_rejected_total", path="raw", reason="invalid_json") == 1
    assert sample("slawatch_events_rejected_total", path="raw", reason="invalid_event") == 1
    assert sample("slawatch_ingest_batch_size_sum", path="raw") == 3


async def test_unacknowledged_records_are_retried_alone() -> None:
    raw, consumer, publisher, _, stop = make([batch(TP0, GOOD, b"x")], failures=1)
    await raw.run(stop)
    assert consumer.log[2:] == ["send 2", "send 2", "commit", "stop"]
    assert len(publisher.sent) == 2
    assert consumer.commits == [{TP0: 2}]


async def test_gives_up_without_committing() -> None:
    raw, consumer, _, _, stop = make([batch(TP0, GOOD)], failures=99)
    with pytest.raises(PublishError, match="not acknowledged"):
        await raw.run(stop)
    assert consumer.log[2:] == ["send 1", "send 1", "send 1", "stop"]
    assert consumer.commits == []


async def test_failed_commit_does_not_stop_consumption() -> None:
    raw, consumer, publisher, _, stop = make([batch(TP0, GOOD), batch(TP0, GOOD, first=1)])
    consumer.commit_error = CommitFailedError("rebalanced")
    await raw.run(stop)
    assert consumer.log[2:] == ["send 1", "commit", "send 1", "commit", "stop"]
    assert len(publisher.sent) == 2


async def test_revoked_partition_is_not_committed() -> None:
    raw, consumer, publisher, _, stop = make([batch(TP0, GOOD) | batch(TP1, GOOD)])
    consumer.assigned = {TP1}
    await raw.run(stop)
    assert len(publisher.sent) == 2
    assert consumer.commits == [{TP1: 1}]


async def test_nothing_left_to_commit_after_full_revocation() -> None:
    raw, consumer, _, _, stop = make([batch(TP0, GOOD)])
    consumer.assigned = set()
    await raw.run(stop)
    assert consumer.log[2:] == ["send 1", "stop"]


async def test_revoke_waits_for_the_batch_in_progress() -> None:
    lock = asyncio.Lock()
    listener = FinishBatchOnRevoke(lock)
    async with lock:
        revoke = asyncio.create_task(listener.on_partitions_revoked({TP0}))
        await asyncio.sleep(0)
        assert not revoke.done()
    await asyncio.wait_for(revoke, 1)


def test_group_id() -> None:
    assert group_id("slawatch") == "slawatch-ingest-raw"


async def test_a_position_past_the_log_end_resumes_at_the_log_start() -> None:
    """The broker restarted empty under the running loop: partition 0's log now ends at
    2, before the next offset 12; partition 1 is within its log."""
    batches = [batch(TP0, GOOD, GOOD, first=10) | batch(TP1, GOOD, first=3)]
    raw, consumer, _, registry, stop = make(batches)
    raw._log_end._judge = ShortLogJudge(grace_ms=0)  # no identity to ask: the grace decides
    consumer.highwaters = {TP0: 2, TP1: 4}
    await raw.run(stop)
    assert [entry for entry in consumer.log if entry.startswith("seek")] == ["seek_to_beginning 0"]
    labels = {"topic": TOPICS.raw, "reason": "beyond_log_end"}
    assert registry.get_sample_value("slawatch_offset_resets_total", labels) == 1
