"""Source runners against a fake consumer: mapping, dead letters with coordinates,
commit order, pause/resume, lag arithmetic (the embedded broker's offsets are not
exact, so lag is tested here), the manager and the API."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from fastapi import FastAPI
from prometheus_client import CollectorRegistry

from services.ingest.exceptions import PublishError
from services.ingest.records import OutRecord
from services.ingest.source_api import sources_router
from services.ingest.sources import (
    SourceManager,
    SourceMetrics,
    SourceRunner,
    group_id,
    lag_of,
)
from shared.deadletter import DeadLetter
from shared.definitions.kinds.source import SourceSpec
from shared.schemas import Event
from shared.topics import Topics
from tests.keys import api_client, static_auth

TOPICS = Topics.from_prefix("u")
TP0 = TopicPartition("shop.orders", 0)
TP1 = TopicPartition("shop.orders", 1)
NOW = 1_800_000_000_000
SPEC = SourceSpec.model_validate(
    {
        "topics": ["shop.orders"],
        "mapping": {"service": "$.app", "time": "$.ts", "outcome": "status < 500"},
    }
)


@dataclass
class Message:
    topic: str
    partition: int
    offset: int
    timestamp: int
    value: bytes | None


def msgs(tp: TopicPartition, first: int, *values: object) -> dict[Any, list[Message]]:
    return {
        tp: [
            Message(
                tp.topic,
                tp.partition,
                first + i,
                NOW,
                v if isinstance(v, bytes) else orjson.dumps(v),
            )
            for i, v in enumerate(values)
        ]
    }


@dataclass
class FakeConsumer:
    batches: list[dict[Any, list[Message]]]
    done: asyncio.Event = field(default_factory=asyncio.Event)
    assigned: set[Any] = field(default_factory=lambda: {TP0, TP1})
    highwaters: dict[Any, int | None] = field(default_factory=dict)
    paused: set[Any] = field(default_factory=set)
    commits: list[dict[Any, int]] = field(default_factory=list)
    log: list[str] = field(default_factory=list)

    def subscribe(self, topics: list[str], listener: Any) -> None:
        self.log.append(f"subscribe {topics}")

    async def start(self) -> None:
        self.log.append("start")

    async def stop(self) -> None:
        self.log.append("stop")

    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[Any, list[Message]]:
        await asyncio.sleep(0)
        if self.paused:
            self.done.set()
            return {}
        if self.batches:
            return self.batches.pop(0)
        self.done.set()
        return {}

    def assignment(self) -> set[Any]:
        return self.assigned

    def pause(self, *partitions: Any) -> None:
        self.paused.update(partitions)

    def resume(self, *partitions: Any) -> None:
        self.paused.difference_update(partitions)

    def highwater(self, partition: Any) -> int | None:
        return self.highwaters.get(partition)

    async def end_offsets(self, partitions: list[Any]) -> dict[Any, int]:
        return {tp: h for tp in partitions if (h := self.highwaters.get(tp)) is not None}

    async def commit(self, offsets: dict[Any, int]) -> None:
        self.log.append("commit")
        self.commits.append(offsets)


@dataclass
class Publisher:
    fail: bool = False
    sent: list[OutRecord] = field(default_factory=list)
    log: list[str] | None = None

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        if self.log is not None:
            self.log.append("send")
        if self.fail:
            return ["KafkaTimeoutError"] * len(records)
        self.sent.extend(records)
        return [None] * len(records)

    async def ready(self) -> bool:
        return True


def make_runner(
    consumer: FakeConsumer, publisher: Publisher, registry: CollectorRegistry
) -> SourceRunner:
    return SourceRunner(
        "orders",
        SPEC,
        consumer,
        publisher,
        TOPICS,
        SourceMetrics(registry),
        lambda: NOW,
        retry_backoff_s=0,
        publish_attempts=1,
    )


async def run_until_done(runner: SourceRunner, consumer: FakeConsumer) -> None:
    stop = asyncio.Event()
    task = asyncio.create_task(runner.run(stop))
    await consumer.done.wait()
    stop.set()
    await task


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


async def test_records_become_events_or_dead_letters_then_commit() -> None:
    good = {"app": "checkout", "ts": 1795870800, "status": 200}
    consumer = FakeConsumer(
        [msgs(TP0, 10, good, {"app": "checkout", "status": "x"}, b"{bad"), msgs(TP1, 3, good)]
    )
    publisher = Publisher(log=consumer.log)
    registry = CollectorRegistry()
    runner = make_runner(consumer, publisher, registry)
    await run_until_done(runner, consumer)

    assert consumer.log == [
        "subscribe ['shop.orders']",
        "start",
        "send",
        "commit",
        "send",
        "commit",
        "stop",
    ]
    assert consumer.commits == [{TP0: 13}, {TP1: 4}]
    events = [Event.from_json(r.value) for r in publisher.sent if r.topic == TOPICS.events]
    assert [(e.service, e.time, e.outcome, e.source) for e in events] == [
        ("checkout", 1795870800000, "good", "kafka:shop.orders")
    ] * 2
    letters = [
        (r.key, DeadLetter.from_json(r.value))
        for r in publisher.sent
        if r.topic == TOPICS.deadletter
    ]
    assert [(k, d.reason, d.topic, d.partition, d.offset) for k, d in letters] == [
        (b"source/orders", "missing_field", "shop.orders", 0, 11),
        (b"source/orders", "invalid_json", "shop.orders", 0, 12),
    ]
    detail = letters[0][1].detail
    assert detail == (
        "source orders: time: $.ts missing; outcome: 'status < 500': cannot compare string < number"
    )
    assert letters[1][1].original == b"{bad"
    assert value(registry, "slawatch_source_records_total", source="orders") == 4
    assert value(registry, "slawatch_source_events_total", source="orders") == 2
    assert (
        value(registry, "slawatch_source_rejected_total", source="orders", reason="missing_field")
        == 1
    )
    assert (
        value(registry, "slawatch_source_rejected_total", source="orders", reason="invalid_json")
        == 1
    )


async def test_unacknowledged_outputs_stop_the_runner_without_commit() -> None:
    consumer = FakeConsumer([msgs(TP0, 0, {"app": "checkout", "ts": 1, "status": 1})])
    runner = make_runner(consumer, Publisher(fail=True), CollectorRegistry())
    with pytest.raises(PublishError):
        await runner.run(asyncio.Event())
    assert consumer.commits == []
    assert consumer.log[-1] == "stop"


async def test_paused_runner_pauses_every_assigned_partition() -> None:
    consumer = FakeConsumer([msgs(TP0, 0, {"app": "checkout", "ts": 1, "status": 1})])
    publisher = Publisher()
    registry = CollectorRegistry()
    runner = make_runner(consumer, publisher, registry)
    runner.set_paused(True)
    await run_until_done(runner, consumer)
    assert consumer.paused == {TP0, TP1}
    assert publisher.sent == []
    assert value(registry, "slawatch_source_paused", source="orders") == 1
    consumer.done.clear()
    runner.set_paused(False)
    await run_until_done(runner, consumer)
    assert consumer.paused == set()
    assert len(publisher.sent) == 1


@pytest.mark.parametrize(
    ("highwaters", "positions", "expected"),
    [
        ({}, {}, None),
        ({TP0: None}, {TP0: 3}, None),
        ({TP0: 10}, {}, None),
        ({TP0: 10}, {TP0: 4}, 6),
        ({TP0: 10, TP1: 7}, {TP0: 4, TP1: 7}, 6),
        ({TP0: 3}, {TP0: 5}, 0),  # a stale watermark never makes lag negative
        ({TP0: 10, TP1: 9}, {TP0: 10}, 0),  # TP1 not processed yet: unknown, left out
    ],
)
def test_lag_arithmetic(
    highwaters: dict[Any, int | None], positions: dict[Any, int], expected: int | None
) -> None:
    assert lag_of(highwaters, positions) == expected


async def test_runner_reports_lag_from_highwaters() -> None:
    consumer = FakeConsumer(
        [msgs(TP0, 0, *[{"app": "checkout", "ts": 1, "status": 1}] * 3)],
        highwaters={TP0: 10, TP1: None},
    )
    registry = CollectorRegistry()
    runner = make_runner(consumer, Publisher(), registry)
    await run_until_done(runner, consumer)
    assert runner.lag == 7
    assert value(registry, "slawatch_source_lag", source="orders") == 7


def test_group_per_source() -> None:
    assert group_id("slawatch", "orders") == "slawatch-source-orders"


class ManagedRunner:
    def __init__(self, name: str, spec: SourceSpec) -> None:
        self.name = name
        self.spec = spec
        self.paused = False
        self.lag: int | None = None
        self.stopped = False

    def set_paused(self, paused: bool) -> None:
        self.paused = paused

    async def run(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self.stopped = True


@pytest.fixture
def manager() -> tuple[SourceManager, list[ManagedRunner]]:
    made: list[ManagedRunner] = []

    def factory(name: str, spec: SourceSpec) -> Any:
        made.append(ManagedRunner(name, spec))
        return made[-1]

    return SourceManager(factory), made


async def test_manager_reconciles_definitions(
    manager: tuple[SourceManager, list[ManagedRunner]],
) -> None:
    mgr, made = manager
    other = SPEC.model_copy(update={"topics": ["other"]})
    await mgr.apply({"a": SPEC, "b": SPEC})
    assert mgr.names == ["a", "b"]
    assert mgr.set_paused("a", True)
    await mgr.apply({"a": other, "c": SPEC})  # a changed, b removed, c new
    assert mgr.names == ["a", "c"]
    assert [r.name for r in made] == ["a", "b", "a", "c"]
    assert made[0].stopped and made[1].stopped
    assert made[2].paused  # the pause survives a definition change
    assert not mgr.set_paused("zzz", True)
    stop = asyncio.Event()
    stop.set()
    await mgr.run(stop)
    assert made[2].stopped and made[3].stopped


async def test_a_source_on_slawatchs_own_topics_is_refused() -> None:
    made: list[ManagedRunner] = []

    def factory(name: str, spec: SourceSpec) -> Any:
        made.append(ManagedRunner(name, spec))
        return made[-1]

    mgr = SourceManager(factory, forbidden_topics=frozenset({"u.events"}))
    loop = SPEC.model_copy(update={"topics": ["shop.orders", "u.events"]})
    await mgr.apply({"loop": loop, "ok": SPEC})
    assert [r.name for r in made] == ["ok"]
    assert mgr.status()[0] == {
        "name": "loop",
        "running": False,
        "error": "reads slawatch's own topic(s) u.events",
    }
    stop = asyncio.Event()
    stop.set()
    await mgr.run(stop)


async def test_a_failing_runner_fails_the_manager() -> None:
    class Failing(ManagedRunner):
        async def run(self, stop: asyncio.Event) -> None:
            raise PublishError("broker gone")

    mgr = SourceManager(lambda n, s: Failing(n, s))  # type: ignore[arg-type,return-value]
    await mgr.apply({"a": SPEC})
    with pytest.raises(PublishError):
        await mgr.run(asyncio.Event())


@pytest.fixture
async def api(
    manager: tuple[SourceManager, list[ManagedRunner]],
) -> AsyncIterator[httpx.AsyncClient]:
    app = FastAPI()
    app.state.authenticator = static_auth()
    app.include_router(sources_router(manager[0]))
    await manager[0].apply({"orders": SPEC})
    async with api_client(app, "http://ingest") as client:
        yield client
    stop = asyncio.Event()
    stop.set()
    await manager[0].run(stop)


async def test_pause_resume_api(api: httpx.AsyncClient) -> None:
    listed = (await api.get("/v1/sources")).json()
    assert listed == {
        "sources": [
            {
                "name": "orders",
                "topics": ["shop.orders"],
                "paused": False,
                "lag": None,
                "running": True,
            }
        ]
    }
    paused = await api.post("/v1/sources/orders/pause")
    assert paused.status_code == 200 and paused.json()["paused"] is True
    resumed = await api.post("/v1/sources/orders/resume")
    assert resumed.json()["paused"] is False
    missing = await api.post("/v1/sources/nope/pause")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
