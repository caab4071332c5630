"""The ingest service in-process against the real broker: HTTP and raw paths."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx
import orjson
import pytest
from aiokafka import TopicPartition
from prometheus_client import CollectorRegistry

from services.ingest.main import run
from services.ingest.raw_consumer import group_id
from shared import kafka
from shared.deadletter import DeadLetter
from shared.embedded import free_port
from shared.errors import InfrastructureError
from shared.schemas import Event
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.ingest.conftest import wait_ready
from tests.keys import bearer, stored_key

pytestmark = pytest.mark.integration

NOW = 1_800_000_000_000
T0 = 1_700_000_000_000
WAIT_S = 15.0


@dataclass
class Running:
    settings: Settings
    topics: Topics
    client: httpx.AsyncClient
    registry: CollectorRegistry

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@pytest.fixture
def ingest_settings(make_settings) -> Settings:  # type: ignore[no-untyped-def]
    built: Settings = make_settings(
        ingest_port=free_port(),
        kafka_session_timeout_ms=3_000,
        kafka_heartbeat_interval_ms=300,
        shutdown_grace_s=5.0,
    )
    return built


@pytest.fixture
async def service(ingest_settings: Settings) -> AsyncIterator[Running]:
    stop = asyncio.Event()
    registry = CollectorRegistry()
    headers = bearer(await stored_key(ingest_settings))
    task = asyncio.create_task(run(ingest_settings, stop, registry=registry, clock=lambda: NOW))
    base = f"http://{ingest_settings.host}:{ingest_settings.ingest_port}"
    async with httpx.AsyncClient(base_url=base, timeout=10.0, headers=headers) as client:
        await wait_ready(client, task)
        yield Running(ingest_settings, Topics.from_settings(ingest_settings), client, registry)
        stop.set()
        # a clean stop: run() returns (no exception) well within the grace period
        await asyncio.wait_for(task, ingest_settings.shutdown_grace_s + 2)


async def consume(settings: Settings, topic: str, count: int) -> list[tuple[bytes, bytes]]:
    """``count`` (key, value) pairs from ``topic``, read from the beginning without a group."""
    consumer = kafka.consumer(settings, topic, group_id=None)
    await consumer.start()
    got: list[tuple[bytes, bytes]] = []
    deadline = asyncio.get_running_loop().time() + WAIT_S
    try:
        while len(got) < count:
            assert asyncio.get_running_loop().time() < deadline, f"only {len(got)} of {count}"
            batch = await consumer.getmany(timeout_ms=500)
            for records in batch.values():
                got.extend((r.key, r.value) for r in records)
        extra = await consumer.getmany(timeout_ms=300)
        got.extend((r.key, r.value) for records in extra.values() for r in records)
    finally:
        await consumer.stop()
    return got


def ev(i: int, service: str = "checkout", **extra: object) -> dict[str, object]:
    return {"id": f"e{i}", "service": service, "type": "request", "time": T0 + i} | extra


async def test_json_array_is_acknowledged_then_on_the_events_topic(service: Running) -> None:
    sent = [ev(0), ev(1, "payments", outcome="bad", value=12.5), ev(2, attributes={"c": "acme"})]
    response = await service.client.post(
        "/v1/events", content=orjson.dumps(sent), headers={"content-type": "application/json"}
    )
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 3

    got = await consume(service.settings, service.topics.events, 3)
    events = {Event.from_json(value).id: (key, Event.from_json(value)) for key, value in got}
    assert len(got) == 3
    for item in sent:
        key, event = events[str(item["id"])]
        assert key == str(item["service"]).encode()
        assert event == Event.model_validate(item | {"received_at": NOW})
    assert service.metric("slawatch_events_ingested_total", path="http") == 3


async def test_ndjson_mixed_batch_reports_each_item(service: Running) -> None:
    body = b"\n".join(
        [
            orjson.dumps(ev(0)),
            b"{not json",
            orjson.dumps(ev(2, time="2026-11-28T13:00:00Z")),
            orjson.dumps(ev(3, value="fast")),
            b"",
            orjson.dumps({"service": "checkout", "type": "heartbeat"}),
        ]
    )
    response = await service.client.post(
        "/v1/events", content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 202, response.text
    result = response.json()
    assert (result["accepted"], result["rejected"], result["failed"]) == (3, 2, 0)
    statuses = [(r["index"], r["status"]) for r in result["results"]]
    assert statuses == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "accepted"),
        (3, "rejected"),
        (5, "accepted"),
    ]
    assert result["results"][3]["errors"][0]["field"] == "value"
    generated_id = result["results"][4]["id"]

    got = await consume(service.settings, service.topics.events, 3)
    ids = sorted(Event.from_json(value).id for _, value in got)
    assert ids == sorted(["e0", "e2", generated_id])
    # invalid HTTP items are answered, not dead-lettered
    assert await _count_now(service.settings, service.topics.deadletter) == 0


async def test_all_invalid_is_422_and_nothing_is_produced(service: Running) -> None:
    response = await service.client.post("/v1/events", json=[ev(0, service="NO")])
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0] == {
        "index": 0,
        "field": "service",
        "message": "String should match pattern '^[a-z0-9][a-z0-9._-]{0,62}$'",
    }
    assert await _count_now(service.settings, service.topics.events) == 0


async def test_raw_topic_good_to_events_bad_to_deadletter(service: Running) -> None:
    raw_records = [
        orjson.dumps(ev(0)),  # offset 0: good
        b"this is not json",  # 1: invalid_json
        b"[1,2,3]",  # 2: not_an_object
        orjson.dumps(ev(3, time="whenever")),  # 3: invalid_event
        orjson.dumps({"service": "checkout", "type": "check"}),  # 4: good, after bad ones
    ]
    producer = kafka.producer(service.settings)
    await producer.start()
    try:
        for value in raw_records:
            await producer.send_and_wait(service.topics.raw, value, partition=0)
    finally:
        await producer.stop()

    events = [
        Event.from_json(v) for _, v in await consume(service.settings, service.topics.events, 2)
    ]
    assert len(events) == 2
    assert events[0] == Event.model_validate(ev(0) | {"received_at": NOW})
    assert (events[1].type, events[1].time, events[1].received_at) == ("check", NOW, NOW)

    letters = [
        DeadLetter.from_json(v)
        for _, v in await consume(service.settings, service.topics.deadletter, 3)
    ]
    assert [(d.offset, d.reason) for d in letters] == [
        (1, "invalid_json"),
        (2, "not_an_object"),
        (3, "invalid_event"),
    ]
    for letter in letters:
        assert letter.rejected_by == "ingest.raw"
        assert (letter.topic, letter.partition) == (service.topics.raw, 0)
        assert letter.original == raw_records[letter.offset or 0]
        assert letter.detail
    assert "time" in (letters[2].detail or "")

    # offsets are committed once outputs are acknowledged
    await _wait_committed(service.settings, TopicPartition(service.topics.raw, 0), 5)
    assert service.metric("slawatch_events_ingested_total", path="raw") == 2
    assert service.metric("slawatch_events_rejected_total", path="raw", reason="invalid_event") == 1


async def test_stop_lets_an_in_flight_request_finish(ingest_settings: Settings) -> None:
    stop = asyncio.Event()
    headers = bearer(await stored_key(ingest_settings))
    task = asyncio.create_task(run(ingest_settings, stop, registry=CollectorRegistry()))
    host, port = ingest_settings.host, ingest_settings.ingest_port
    first_part_sent = asyncio.Event()
    release = asyncio.Event()

    async def slow_body() -> AsyncIterator[bytes]:
        yield b"[" + orjson.dumps(ev(0))
        first_part_sent.set()
        await release.wait()
        yield b"]"

    async with httpx.AsyncClient(
        base_url=f"http://{host}:{port}", timeout=10.0, headers=headers
    ) as client:
        await wait_ready(client, task)
        post = asyncio.create_task(
            client.post(
                "/v1/events", content=slow_body(), headers={"content-type": "application/json"}
            )
        )
        await first_part_sent.wait()
        stop.set()
        await _wait_refused(host, port)  # shutting down: no new connections
        release.set()
        response = await post
    assert response.status_code == 202, response.text
    await asyncio.wait_for(task, ingest_settings.shutdown_grace_s + 2)
    got = await consume(ingest_settings, Topics.from_settings(ingest_settings).events, 1)
    assert [Event.from_json(v).id for _, v in got] == ["e0"]


async def _wait_refused(host: str, port: int) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        try:
            _, writer = await asyncio.open_connection(host, port)
        except OSError:
            return
        writer.close()
        await writer.wait_closed()
        await asyncio.sleep(0.02)
    raise AssertionError("the HTTP server kept accepting connections after stop")


async def test_port_in_use_fails_run(ingest_settings: Settings) -> None:
    with socket.socket() as taken:
        taken.bind((ingest_settings.host, ingest_settings.ingest_port))
        taken.listen()
        with pytest.raises(InfrastructureError):
            await asyncio.wait_for(run(ingest_settings, asyncio.Event()), WAIT_S)


async def _count_now(settings: Settings, topic: str, listen_s: float = 1.0) -> int:
    """Records on ``topic`` seen within ``listen_s`` (for checks that nothing was produced)."""
    consumer = kafka.consumer(settings, topic, group_id=None)
    await consumer.start()
    seen = 0
    until = asyncio.get_running_loop().time() + listen_s
    try:
        while asyncio.get_running_loop().time() < until:
            batch = await consumer.getmany(timeout_ms=200)
            seen += sum(len(records) for records in batch.values())
    finally:
        await consumer.stop()
    return seen


async def _wait_committed(settings: Settings, tp: TopicPartition, offset: int) -> None:
    consumer = kafka.consumer(settings, group_id=group_id(settings.topic_prefix))
    await consumer.start()
    deadline = asyncio.get_running_loop().time() + WAIT_S
    try:
        while (committed := await consumer.committed(tp)) != offset:
            assert asyncio.get_running_loop().time() < deadline, f"committed {committed}"
            await asyncio.sleep(0.05)
    finally:
        await consumer.stop()
