"""The evaluator against the real broker and PostgreSQL: breach lifecycle, dead letters,
status API, checkpoints across a clean stop and across a crash."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import httpx
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.evaluator.main import run
from shared import db, kafka
from shared.deadletter import DeadLetter
from shared.definitions.load import parse_document
from shared.definitions.store import apply
from shared.embedded import free_port
from shared.metrics import new_registry
from shared.schemas import Breach, Event, breach_id
from shared.settings import Settings
from shared.timeutil import wall_clock_ms
from shared.topics import Topics
from tests.keys import bearer, key_for
from tests.unit.evaluator.factories import agreement, agreement_doc
from tests.unit.evaluator.factories import engine as pure_engine

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
OBJECTIVE_ID = "acme-checkout/availability"
STATUS_PATH = "/v1/objectives/acme-checkout/availability/status"


def evaluator_settings_of(make_settings: Callable[..., Settings], **overrides: Any) -> Settings:
    """Settings of one evaluator instance: its own HTTP port, a quick tick, and short group
    timing. The embedded broker starts groups at generation 0, for which aiokafka skips
    the LeaveGroup request on stop, so a successor waits for the session timeout."""
    values: dict[str, Any] = {
        "evaluator_port": free_port(),
        "idle_tick_ms": 100,
        "kafka_session_timeout_ms": 3_000,
        "kafka_heartbeat_interval_ms": 300,
    }
    values.update(overrides)
    return make_settings(**values)


async def apply_definitions(database: AsyncEngine, **objective: Any) -> None:
    async with db.sessions(database)() as session:
        await apply(session, [parse_document(agreement_doc(**objective))])
        await session.commit()


def make_event(
    i: int, time: int, outcome: str, customer: str = "acme", service: str = "checkout"
) -> Event:
    return Event(
        id=f"ev-{service}-{i}",
        service=service,
        type="request",
        time=time,
        outcome=outcome,  # type: ignore[arg-type]
        attributes={"customer": customer},
        received_at=wall_clock_ms(),
    )


async def produce(settings: Settings, values: list[bytes], key: bytes = b"checkout") -> None:
    producer = kafka.producer(settings)
    await producer.start()
    try:
        sent = [
            await producer.send(Topics.from_settings(settings).events, v, key=key) for v in values
        ]
        await asyncio.gather(*sent)
    finally:
        await producer.stop()


async def read_topic(
    settings: Settings, topic: str, done: Callable[[list[bytes]], bool], timeout_s: float = 20.0
) -> list[bytes]:
    """Every record of ``topic`` from the start, until ``done`` holds (bounded wait)."""
    consumer = kafka.consumer(settings, topic, group_id=None)
    await consumer.start()
    got: list[bytes] = []
    deadline = time.monotonic() + timeout_s
    try:
        while not done(got):
            assert time.monotonic() < deadline, f"timed out on {topic}; got {len(got)} records"
            batch = await consumer.getmany(timeout_ms=200)
            for records in batch.values():
                got.extend(r.value for r in records)
    finally:
        await consumer.stop()
    return got


async def eventually(
    check: Callable[[], Awaitable[bool]], what: str, timeout_s: float = 20.0
) -> None:
    deadline = time.monotonic() + timeout_s
    while not await check():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


@contextlib.asynccontextmanager
async def evaluator(settings: Settings) -> AsyncIterator[asyncio.Task[None]]:
    """``run()`` in a task; stopped cleanly on exit unless the test cancelled it (a crash)."""
    stop = asyncio.Event()
    task = asyncio.create_task(run(settings, stop, registry=new_registry()))
    try:
        yield task
    finally:
        if not task.done():
            stop.set()
            await asyncio.wait_for(task, settings.shutdown_grace_s + 5)
        elif not task.cancelled():
            task.result()  # a failure surfaces here


async def status(settings: Settings, path: str = STATUS_PATH) -> dict[str, Any]:
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{settings.evaluator_port}",
        headers=bearer(await key_for(settings)),
    ) as client:
        try:
            response = await client.get(path)
        except httpx.TransportError:
            return {}
        return response.json() if response.status_code == 200 else {}


def valid_count(body: dict[str, Any]) -> int:
    return sum(g["valid"] for g in body.get("groups", []))


async def test_breach_opens_and_resolves(
    settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    await apply_definitions(engine, groupBy=["customer"], alerting={"minEvents": 5})
    evaluator_settings = evaluator_settings_of(make_settings)
    topics = Topics.from_settings(settings)
    # 10 good then 5 bad in the first 1.5 s: 10/12 < 0.9 at the 12th event opens.
    first = [make_event(i, T0 + i * 100, "good" if i < 10 else "bad") for i in range(15)]
    # 70 s later the old buckets have left the 1 m window: it empties at T0 + 61 s.
    later = make_event(15, T0 + 70_000, "good")
    late = make_event(16, T0 + 1_000, "bad")  # watermark is T0 + 40 s by then
    await produce(settings, [e.to_json() for e in first])
    await produce(settings, [later.to_json(), b"not json", late.to_json()])

    async with evaluator(evaluator_settings):
        raw = await read_topic(settings, topics.breaches, lambda got: len(got) >= 2)
        letters = await read_topic(settings, topics.deadletter, lambda got: len(got) >= 2)
        await eventually(lambda: _has_valid(evaluator_settings, 1), "status of the new window")
        body = await status(evaluator_settings)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{evaluator_settings.evaluator_port}",
            headers=bearer(await key_for(evaluator_settings)),
        ) as client:
            ready = await client.get("/readyz")
            metrics = (await client.get("/metrics")).text
            missing = await client.get("/v1/objectives/acme-checkout/nope/status")

    opened, resolved = (Breach.from_json(r) for r in raw)
    group = {"customer": "acme"}
    expected_id = breach_id(OBJECTIVE_ID, group, "threshold", T0 + 1_100)
    assert (opened.kind, opened.id, opened.at, opened.opened_at) == (
        "breach.opened",
        expected_id,
        T0 + 1_100,
        T0 + 1_100,
    )
    assert opened.group == group and opened.severity == "page" and opened.rule == "threshold"
    assert opened.agreement.name == "acme-checkout" and opened.service == "checkout"
    assert [(w.window, w.good, w.valid, w.target) for w in opened.windows] == [("1m", 10, 12, 0.9)]
    assert opened.trigger_event_id == "ev-checkout-11"
    assert opened.trigger_received_at == first[11].received_at
    assert opened.detected_at >= opened.trigger_received_at
    assert (resolved.kind, resolved.id, resolved.at) == (
        "breach.resolved",
        expected_id,
        T0 + 61_000,
    )
    assert resolved.resolved_at == T0 + 61_000 and resolved.opened_at == T0 + 1_100
    # Resolved by time passing (the window emptied at T0 + 61 s), not by an event: no
    # trigger, whether a tick or the next event got there first.
    assert resolved.trigger_event_id is None

    letters_by_reason = {d.reason: d for d in map(DeadLetter.from_json, letters)}
    assert sorted((r, d.offset) for r, d in letters_by_reason.items()) == [
        ("invalid", 16),
        ("late", 17),
    ]
    assert letters_by_reason["invalid"].original == b"not json"
    assert letters_by_reason["late"].original == late.to_json()
    assert letters_by_reason["late"].rejected_by == "evaluator"
    assert letters_by_reason["late"].topic == topics.events

    assert body["scope"] == "owned-partitions"
    [acme] = body["groups"]
    assert (acme["group"], acme["good"], acme["valid"], acme["sli"]) == (group, 1, 1, 1.0)
    assert acme["active_breach_id"] is None and acme["window"] == "1m" and acme["target"] == 0.9
    assert ready.status_code == 200
    assert ready.json()["checks"] == {
        "broker": {"ok": True},
        "topics": {"ok": True},
        "database": {"ok": True},
        "consumer": {"ok": True},
    }
    assert f'slawatch_breaches_opened_total{{objective="{OBJECTIVE_ID}"}} 1.0' in metrics
    assert "slawatch_late_events_total 1.0" in metrics
    assert "slawatch_events_evaluated_total 16.0" in metrics
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"


async def _has_valid(settings: Settings, count: int) -> bool:
    return valid_count(await status(settings)) == count


def crash_stream() -> list[Event]:
    """Three waves; the pure engine over all of them is the reference."""
    outcomes = ["bad"] * 10 + ["good"] * 10 + ["bad"] * 15 + ["good"] * 30
    return [make_event(i, T0 + i * 1_000, o) for i, o in enumerate(outcomes)]


def reference(events: list[Event]) -> tuple[list[tuple[str, str, int]], tuple[int, int]]:
    evaluator = pure_engine(
        agreement(target=0.5, window="1h", alerting={"minEvents": 5}), allowed_lateness_ms=30_000
    )
    evaluator.assign(0, None)
    out: list[tuple[str, str, int]] = []
    for e in events:
        out += [(b.id, b.kind, b.at) for b in evaluator.process(0, e).breaches]
    [group] = evaluator.status(OBJECTIVE_ID)
    return out, (group.status.good, group.status.valid)


async def checkpointed_offset(database: AsyncEngine) -> int | None:
    async with database.connect() as conn:
        row = (await conn.execute(text("SELECT max(next_offset) FROM evaluator_checkpoints"))).one()
    return row[0]


@pytest.mark.parametrize("crash", [False, True], ids=["clean-stop", "crash"])
async def test_each_event_counted_once_across_restarts(
    crash: bool, settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    await apply_definitions(engine, target=0.5, window="1h", alerting={"minEvents": 5})
    events = crash_stream()
    expected, expected_counts = reference(events)
    assert [k for _, k, _ in expected].count("breach.opened") == 2
    assert [k for _, k, _ in expected].count("breach.resolved") == 2
    topics = Topics.from_settings(settings)
    first = evaluator_settings_of(
        make_settings,
        checkpoint_every_events=20,
        checkpoint_interval_ms=3_600_000,
    )

    await produce(settings, [e.to_json() for e in events[:20]])
    async with evaluator(first) as task:
        await eventually(lambda: _checkpoint_is(engine, 20), "a checkpoint at offset 20")
        await produce(settings, [e.to_json() for e in events[20:35]])
        await eventually(lambda: _has_valid(first, 35), "35 events evaluated")
        if crash:  # no checkpoint since offset 20: the next instance replays 15 events
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
    assert await checkpointed_offset(engine) == (20 if crash else 35)

    await produce(settings, [e.to_json() for e in events[35:]])
    second = evaluator_settings_of(make_settings)
    async with evaluator(second):
        await eventually(lambda: _has_valid(second, len(events)), "every event evaluated")
        [group] = (await status(second))["groups"]
        raw = await read_topic(
            settings,
            topics.breaches,
            lambda got: {(b.id, b.kind, b.at) for b in map(Breach.from_json, got)} >= set(expected),
        )
    assert (group["good"], group["valid"]) == expected_counts
    published = [(b.id, b.kind, b.at) for b in map(Breach.from_json, raw)]
    assert set(published) == set(expected)
    if not crash:
        assert sorted(published) == sorted(expected)  # nothing published twice
    # after a crash, replayed lifecycle events repeat with the same (id, kind, at) keys
    assert len({i for i, k, _ in published if k == "breach.opened"}) == 2


async def _checkpoint_is(database: AsyncEngine, offset: int) -> bool:
    return await checkpointed_offset(database) == offset


async def test_scale_out_moves_state_with_partitions(
    settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    """A second instance joins: the first checkpoints on revoke, the second restores."""
    objective = {"target": 0.5, "window": "1h", "alerting": {"minEvents": 5}}
    async with db.sessions(engine)() as session:
        docs = [
            agreement_doc("acme-checkout", **objective),
            agreement_doc("acme-cart", service="cart", **objective),
        ]
        await apply(session, [parse_document(d) for d in docs])
        await session.commit()
    # checkout and cart land on partitions 0 and 1 (murmur2 of the service key)
    outcomes = ["bad"] * 6 + ["good"] * 14 + ["bad"] * 12 + ["good"] * 8
    streams = {
        service: [make_event(i, T0 + i * 1_000, o, service=service) for i, o in enumerate(outcomes)]
        for service in ("checkout", "cart")
    }
    pure = pure_engine(
        agreement("acme-checkout", **objective),
        agreement("acme-cart", service="cart", **objective),
    )
    expected: set[tuple[str, str, int]] = set()
    for partition, service in enumerate(streams):
        pure.assign(partition, None)
        for e in streams[service]:
            expected |= {(b.id, b.kind, b.at) for b in pure.process(partition, e).breaches}
    assert len(expected) == 8  # per service: opened, resolved, opened (wave 2), resolved

    paths = {s: f"/v1/objectives/acme-{s}/availability/status" for s in streams}

    async def counted(instances: list[Settings], service: str) -> int:
        return sum([valid_count(await status(i, paths[service])) for i in instances])

    async def all_counted(instances: list[Settings], count: int) -> bool:
        return all([await counted(instances, s) == count for s in streams])

    async def split(instances: list[Settings]) -> bool:
        owned = [(await status(i)).get("partitions") for i in instances]
        return sorted(p for ps in owned if ps for p in ps) == [0, 1] and all(
            ps and len(ps) == 1 for ps in owned
        )

    for service, events in streams.items():
        await produce(settings, [e.to_json() for e in events[:20]], key=service.encode())
    quiet = {"checkpoint_every_events": 100_000, "checkpoint_interval_ms": 3_600_000}
    first = evaluator_settings_of(make_settings, **quiet)
    second = evaluator_settings_of(make_settings, **quiet)
    async with evaluator(first):
        await eventually(lambda: all_counted([first], 20), "20 events per service on one instance")
        assert await checkpointed_offset(engine) is None
        async with evaluator(second):
            await eventually(lambda: split([first, second]), "one partition per instance")
            async with engine.connect() as conn:
                rows = await conn.execute(
                    text("SELECT partition, next_offset FROM evaluator_checkpoints ORDER BY 1")
                )
                assert [tuple(r) for r in rows] == [(0, 20), (1, 20)]  # written on revoke
            for service, events in streams.items():
                await produce(settings, [e.to_json() for e in events[20:]], key=service.encode())
            await eventually(lambda: all_counted([first, second], 40), "40 events per service")
            raw = await read_topic(
                settings,
                Topics.from_settings(settings).breaches,
                lambda got: {(b.id, b.kind, b.at) for b in map(Breach.from_json, got)} >= expected,
            )
    published = [(b.id, b.kind, b.at) for b in map(Breach.from_json, raw)]
    assert sorted(published) == sorted(expected)
