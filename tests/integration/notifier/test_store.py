"""Intake's transaction and the outbox against the real PostgreSQL."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier import outbox
from services.notifier.backoff import Backoff
from services.notifier.intake import record_breach
from services.notifier.slots import Slots
from shared import db
from tests.integration.notifier.support import scalar
from tests.unit.notifier.support import T0, make_breach

pytestmark = pytest.mark.integration


async def record(engine: AsyncEngine, receivers: list[str], **overrides: object) -> bool:
    async with db.sessions(engine)() as session, session.begin():
        recorded = await record_breach(session, make_breach(**overrides), receivers, T0)
    return recorded.new_event


async def test_same_event_twice_is_recorded_and_enqueued_once(engine: AsyncEngine) -> None:
    assert await record(engine, ["a", "b"]) is True
    assert await record(engine, ["a", "b"]) is False
    assert await scalar(engine, "SELECT count(*) FROM breaches") == 1
    assert await scalar(engine, "SELECT count(*) FROM breach_events") == 1
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 2


async def test_lifecycle_moves_the_breach_row_forward_only(engine: AsyncEngine) -> None:
    await record(engine, ["a"])
    await record(engine, ["a"], kind="breach.resolved", at=T0 + 60_000, resolved_at=T0 + 60_000)
    # a late replay of an older update is logged and notified, but does not reopen
    await record(engine, ["a"], kind="breach.updated", at=T0 + 30_000, severity="ticket")
    assert await scalar(engine, "SELECT status FROM breaches") == "resolved"
    assert await scalar(engine, "SELECT resolved_at FROM breaches") == T0 + 60_000
    assert await scalar(engine, "SELECT severity FROM breaches") == "page"
    assert await scalar(engine, "SELECT count(*) FROM breach_events") == 3
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 3


async def test_unrouted_event_is_recorded_without_deliveries(engine: AsyncEngine) -> None:
    assert await record(engine, []) is True
    assert await scalar(engine, "SELECT count(*) FROM breach_events") == 1
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 0


async def claim(engine: AsyncEngine, now: int, limit: int = 10) -> list[outbox.Claimed]:
    async with db.sessions(engine)() as session, session.begin():
        return await outbox.claim(session, now, lease_ms=10_000, limit=limit)


async def test_concurrent_claims_never_share_a_row(engine: AsyncEngine) -> None:
    receivers = [f"r{i}" for i in range(30)]
    await record(engine, receivers)
    batches = await asyncio.gather(*(claim(engine, T0, limit=4) for _ in range(10)))
    ids = [c.id for batch in batches for c in batch]
    assert len(ids) == len(set(ids)) == 30
    assert all(c.attempt == 1 and c.breach() == make_breach() for b in batches for c in b)
    assert await claim(engine, T0 + 9_999) == []  # all leased


async def test_claim_leaves_out_full_receivers_and_takes_what_the_slots_choose(
    engine: AsyncEngine,
) -> None:
    for i in range(4):
        await record(engine, ["a-hang", "b-ok", "c-full"], id=f"{i:032d}")
    slots = Slots(capacity=10, per_receiver=2)
    slots.take("c-full")
    slots.take("c-full")
    async with db.sessions(engine)() as session, session.begin():
        claimed = await outbox.claim(
            session,
            T0,
            lease_ms=10_000,
            limit=slots.free(),
            skip_receivers=slots.full(),
            choose=slots.choose,
        )
    assert [c.receiver for c in claimed] == ["a-hang", "b-ok", "a-hang", "b-ok"]
    # The candidates passed over were locked only for the claim: the next one gets them.
    again = await claim(engine, T0)
    assert sorted(c.receiver for c in again) == ["a-hang"] * 2 + ["b-ok"] * 2 + ["c-full"] * 4
    assert await scalar(engine, "SELECT sum(attempts) FROM deliveries") == 12


async def test_expired_lease_is_claimed_again_and_fences_the_old_worker(
    engine: AsyncEngine,
) -> None:
    await record(engine, ["a"])
    [first] = await claim(engine, T0)
    [second] = await claim(engine, T0 + 10_000)  # the first worker's lease ran out
    assert (first.id, first.attempt, second.attempt) == (second.id, 1, 2)
    policy = Backoff(base_ms=100, max_ms=1_000)
    async with db.sessions(engine)() as session, session.begin():
        stale = await outbox.finish(
            session,
            first,
            outbox.decide(1, 5, None, policy, lambda: 0.5),
            now_ms=T0 + 10_001,
            status_code=200,
            latency_ms=3,
            error=None,
        )
    assert stale is False
    assert await scalar(engine, "SELECT status FROM deliveries") == "delivering"
    async with db.sessions(engine)() as session, session.begin():
        kept = await outbox.finish(
            session,
            second,
            outbox.decide(2, 5, None, policy, lambda: 0.5),
            now_ms=T0 + 10_002,
            status_code=200,
            latency_ms=3,
            error=None,
        )
    assert kept is True
    assert await scalar(engine, "SELECT status FROM deliveries") == "delivered"
    assert await scalar(engine, "SELECT count(*) FROM delivery_attempts") == 2


async def test_retry_is_due_after_its_backoff(engine: AsyncEngine) -> None:
    await record(engine, ["a"])
    [row] = await claim(engine, T0)
    async with db.sessions(engine)() as session, session.begin():
        await outbox.finish(
            session,
            row,
            outbox.Decision("retry", 500),
            now_ms=T0 + 100,
            status_code=503,
            latency_ms=3,
            error="http_5xx: HTTP 503",
        )
    assert await claim(engine, T0 + 599) == []
    [again] = await claim(engine, T0 + 600)
    assert again.attempt == 2
    assert await scalar(engine, "SELECT last_error FROM deliveries") == "http_5xx: HTTP 503"
