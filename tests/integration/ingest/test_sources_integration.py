"""Sources on the real broker: a topic in a foreign JSON shape → canonical events; bad
records → dead letters with their coordinates, and consumption goes on; a Source
stored in the database is picked up while ingest runs; pause/resume."""

from __future__ import annotations

import asyncio

import orjson
import pytest
from aiokafka.admin import NewTopic
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.normalize import record_id
from shared import db, kafka
from shared.deadletter import DeadLetter
from shared.definitions.kinds.source import SourceSpec
from shared.embedded import free_port
from shared.models import Definition
from shared.schemas import Event
from shared.settings import Settings
from tests.integration.ingest.conftest import NOW, read_topic, running_ingest

pytestmark = pytest.mark.integration

SPEC = {
    "topics": [],
    "mapping": {
        "id": "$.req.id",
        "service": "$.app",
        "type": "http.request",
        "time": {"path": "$.ts", "format": "epoch_s"},
        "outcome": "$.http.status < 500",
        "value": {"path": "$.took_us", "unit": "us"},
        "attributes": {"customer": "$.cust", "region": "$.geo.region"},
    },
}


async def create_topic(settings: Settings, name: str, partitions: int = 2) -> None:
    admin = kafka.admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(name, num_partitions=partitions, replication_factor=1)])
    finally:
        await admin.close()


async def produce(settings: Settings, topic: str, values: list[bytes], key: bytes) -> None:
    producer = kafka.producer(settings)
    await producer.start()
    try:
        for v in values:
            await producer.send_and_wait(topic, v, key=key)
    finally:
        await producer.stop()


def order(i: int, status: int = 200) -> bytes:
    return orjson.dumps(
        {
            "req": {"id": f"r{i}"},
            "app": "shop",
            "ts": 1795870800 + i,
            "http": {"status": status},
            "took_us": 1500,
            "cust": "acme",
            "geo": {"region": "eu"},
            "noise": [1, 2, 3],
        }
    )


@pytest.fixture
def source_settings(make_settings) -> Settings:  # type: ignore[no-untyped-def]
    built: Settings = make_settings(
        ingest_port=free_port(),
        kafka_session_timeout_ms=3_000,
        kafka_heartbeat_interval_ms=300,
        shutdown_grace_s=5.0,
    )
    return built


async def test_foreign_topic_to_events_and_dead_letters(source_settings: Settings) -> None:
    topic = f"{source_settings.topic_prefix}.shop.requests"
    await create_topic(source_settings, topic, partitions=1)
    spec = SourceSpec.model_validate(SPEC | {"topics": [topic]})
    bad = [b"{nope", orjson.dumps({"app": "shop", "ts": "late", "http": {"status": "x"}})]
    await produce(source_settings, topic, [order(0), order(1, 503), *bad, order(4)], b"k")

    async with running_ingest(source_settings, sources={"shop": spec}) as ingest:
        events = await read_topic(source_settings, ingest.topics.events, 3)
        letters = await read_topic(source_settings, ingest.topics.deadletter, 2)
        status = (await ingest.client.get("/v1/sources")).json()["sources"]
        assert [s["name"] for s in status] == ["shop"]
        # consumption went on past the bad records; counters per source
        assert ingest.metric("slawatch_source_records_total", source="shop") == 5
        assert ingest.metric("slawatch_source_events_total", source="shop") == 3
        assert (
            ingest.metric("slawatch_source_rejected_total", source="shop", reason="invalid_json")
            == 1
        )

    parsed = sorted((Event.from_json(v) for _, v in events), key=lambda e: e.id)
    assert [(e.id, e.outcome) for e in parsed] == [("r0", "good"), ("r1", "bad"), ("r4", "good")]
    assert parsed[0] == Event(
        id="r0",
        service="shop",
        type="http.request",
        time=1795870800000,
        outcome="good",
        value=1.5,
        attributes={"customer": "acme", "region": "eu"},
        source=f"kafka:{topic}",
        received_at=NOW,
    )
    assert {k for k, _ in events} == {b"shop"}
    dead = sorted((DeadLetter.from_json(v) for _, v in letters), key=lambda d: d.offset or 0)
    assert {k for k, _ in letters} == {b"source/shop"}
    assert [(d.reason, d.topic, d.partition, d.offset) for d in dead] == [
        ("invalid_json", topic, 0, 2),
        ("missing_field", topic, 0, 3),
    ]
    assert dead[0].original == b"{nope"
    assert dead[1].detail is not None and "source shop: id: $.req.id missing" in dead[1].detail
    assert "time: expected epoch_s time, got string" in dead[1].detail


async def test_source_from_the_database_is_hot_loaded_and_pausable(
    source_settings: Settings, engine: AsyncEngine
) -> None:
    topic = f"{source_settings.topic_prefix}.legacy"
    await create_topic(source_settings, topic)
    document = {
        "apiVersion": "slawatch/v1",
        "kind": "Source",
        "metadata": {"name": "legacy"},
        "spec": {"topics": [topic], "mapping": {"service": "$.svc", "outcome": "ok == true"}},
    }
    async with running_ingest(source_settings) as ingest:
        assert (await ingest.client.get("/v1/sources")).json() == {"sources": []}
        async with db.sessions(engine)() as session:
            session.add(Definition(kind="Source", name="legacy", version=1, document=document))
            await session.execute(text("SELECT pg_notify('slawatch_definitions', 'Source/legacy')"))
            await session.commit()
        await _until(ingest, lambda s: [x["name"] for x in s] == ["legacy"])

        await produce(source_settings, topic, [orjson.dumps({"svc": "legacy", "ok": False})], b"a")
        (got,) = await read_topic(source_settings, ingest.topics.events, 1)
        event = Event.from_json(got[1])
        assert (event.service, event.outcome) == ("legacy", "bad")
        assert event.id == record_id(topic, event_partition(source_settings, b"a"), 0)

        paused = await ingest.client.post("/v1/sources/legacy/pause")
        assert paused.json()["paused"] is True
        assert ingest.metric("slawatch_source_paused", source="legacy") == 1
        await produce(source_settings, topic, [orjson.dumps({"svc": "legacy", "ok": True})], b"a")
        # while paused nothing more is produced: listen for a full second
        still = await read_topic(source_settings, ingest.topics.events, 1, extra_s=1.0)
        assert len(still) == 1
        resumed = await ingest.client.post("/v1/sources/legacy/resume")
        assert resumed.json()["paused"] is False
        both = await read_topic(source_settings, ingest.topics.events, 2)
        assert sorted(Event.from_json(v).outcome or "" for _, v in both) == ["bad", "good"]

        async with db.sessions(engine)() as session:  # deleted: its runner stops
            await session.execute(text("DELETE FROM definitions WHERE kind = 'Source'"))
            await session.execute(text("SELECT pg_notify('slawatch_definitions', 'Source/legacy')"))
            await session.commit()
        await _until(ingest, lambda s: s == [])


def event_partition(settings: Settings, key: bytes) -> int:
    from aiokafka.partitioner import DefaultPartitioner

    return int(DefaultPartitioner()(key, [0, 1], [0, 1]))


async def _until(ingest, check) -> None:  # type: ignore[no-untyped-def]
    deadline = asyncio.get_running_loop().time() + 10
    while True:
        sources = (await ingest.client.get("/v1/sources")).json()["sources"]
        if check(sources):
            return
        assert asyncio.get_running_loop().time() < deadline, sources
        await asyncio.sleep(0.1)
