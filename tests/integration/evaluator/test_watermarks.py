"""One service's clock cannot blind another on the same partition, live and after a
restart from the checkpoint (real broker, real PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.deadletter import DeadLetter
from shared.definitions.load import parse_document
from shared.definitions.store import apply
from shared.schemas import Breach, Event
from shared.settings import Settings
from shared.timeutil import wall_clock_ms
from shared.topics import Topics
from tests.integration.evaluator.test_evaluator import (
    evaluator,
    evaluator_settings_of,
    eventually,
    produce,
    read_topic,
)
from tests.unit.evaluator.factories import agreement, agreement_doc
from tests.unit.evaluator.factories import engine as pure_engine

pytestmark = pytest.mark.integration

HOUR = 3_600_000
OBJECTIVE = "acme-checkout/availability"


def request(service: str, n: int, time: int, outcome: str) -> bytes:
    return Event(
        id=f"{service}-{n}",
        service=service,
        type="request",
        time=time,
        outcome=outcome,  # type: ignore[arg-type]
        received_at=wall_clock_ms(),
    ).to_json()


async def metrics_text(settings: Settings) -> str:
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{settings.evaluator_port}") as client:
        return (await client.get("/metrics")).text


async def evaluated(settings: Settings, count: int) -> bool:
    """Read from /metrics (open without a key): the status API needs one."""
    try:
        body = await metrics_text(settings)
    except httpx.TransportError:
        return False
    return f"slawatch_events_evaluated_total {float(count)}" in body


async def stored_states(database: AsyncEngine) -> list[bytes]:
    async with database.connect() as conn:
        rows = (await conn.execute(text("SELECT state FROM evaluator_checkpoints"))).all()
    return [bytes(row[0]) for row in rows]


async def test_a_skewed_service_does_not_make_its_neighbours_late(
    settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    objective = {"target": 0.5, "window": "1h", "alerting": {"minEvents": 5}}
    async with db.sessions(engine)() as session:
        docs = [
            agreement_doc("acme-checkout", **objective),
            agreement_doc("acme-search", service="search", **objective),
        ]
        await apply(session, [parse_document(d) for d in docs])
        await session.commit()
    topics = Topics.from_settings(settings)
    now = wall_clock_ms()
    # Service A (search) on B's partition: one event an hour ahead (refused), one four
    # minutes ahead (within the skew bound: it moves A's clock only).
    a_events = [
        request("search", 0, now + HOUR, "good"),
        request("search", 1, now + 240_000, "good"),
    ]
    b_first = [request("checkout", n, now - 20_000 + n * 100, "bad") for n in range(10)]
    await produce(settings, [*a_events, *b_first], key=b"checkout")

    first = evaluator_settings_of(make_settings)
    async with evaluator(first):
        raw = await read_topic(settings, topics.breaches, lambda got: len(got) >= 1)
        await eventually(lambda: evaluated(first, 11), "A's current and B's ten events")
        letters = await read_topic(settings, topics.deadletter, lambda got: len(got) >= 1)
        before = await metrics_text(first)
    [opened] = [b for b in map(Breach.from_json, raw) if b.service == "checkout"]
    assert opened.kind == "breach.opened"
    [future] = map(DeadLetter.from_json, letters)
    assert (future.reason, future.offset, future.original) == ("future", 0, a_events[0])
    assert "slawatch_future_events_total 1.0" in before
    assert "slawatch_late_events_total 0.0" in before
    # Nothing an hour ahead was stored (the checkpoint of a clean stop).
    for body in map(orjson.loads, await stored_states(engine)):
        clocks = body["clocks"]
        assert isinstance(clocks, dict) and isinstance(body["max_time"], int)
        assert body["max_time"] <= now + 300_000
        assert all(t <= now + 300_000 for t in clocks.values())

    # After a restart from that checkpoint, B's events stamped before A's clock still
    # count, and its breach stays open (no second one).
    b_more = [request("checkout", 10 + n, now - 5_000 + n * 100, "bad") for n in range(10)]
    await produce(settings, b_more, key=b"checkout")
    second = evaluator_settings_of(make_settings)
    async with evaluator(second):
        await eventually(lambda: evaluated(second, 10), "B's next ten events")
        after = await metrics_text(second)
    assert "slawatch_late_events_total 0.0" in after
    assert "slawatch_future_events_total 0.0" in after
    # The state the clean stop checkpointed: all twenty counted, the breach still open
    # under its first id (it neither resolved nor opened again).
    reference = pure_engine(agreement("acme-checkout", **objective))
    [state] = [
        raw for raw in await stored_states(engine) if OBJECTIVE in orjson.loads(raw)["objectives"]
    ]
    reference.assign(0, state)
    [group] = reference.status(OBJECTIVE)
    assert (group.status.valid, group.status.active_breach_id) == (20, opened.id)
