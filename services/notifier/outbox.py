"""The durable outbox: one ``deliveries`` row per (breach event, receiver).

State machine (``status``; ``attempts`` counts claims, i.e. attempts started)::

    pending ──claim──▶ delivering ──2xx─────────────────────────▶ delivered
       ▲  ▲                │  │
       │  │                │  ├─retriable, attempts < max──▶ pending, due at now + backoff
       │  └────────────────┘  └─not retriable, or attempts = max──▶ dead
       └ lease expired: a crashed worker's row is claimed again

Claiming is one statement: ``UPDATE … WHERE id IN (SELECT … FOR UPDATE SKIP LOCKED
LIMIT n)`` sets ``status='delivering'``, ``attempts+1`` and ``next_attempt_at`` to the
lease expiry, then commits; the delivery runs outside any row lock. Replicas never
deliver one row at the same time: a row is claimable again only after its lease, and
the lease is longer than a delivery can take (the worker enforces a total deadline).
Finishing is fenced by ``attempts``: a worker whose lease was taken over finds
``attempts`` changed and does not touch the row (its attempt is still recorded).

All times here come from the injected clock (epoch ms), not from ``now()`` in SQL,
so tests control them; replicas need roughly synchronised clocks, as leases do anyway.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.backoff import Backoff, Random
from services.notifier.channels.base import DeliveryError
from shared.models import BreachEventRecord, Delivery, DeliveryAttempt
from shared.schemas import Breach

Outcome = Literal["delivered", "retry", "dead"]


def ms_to_dt(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def dt_to_ms(value: datetime) -> int:
    return int(value.timestamp() * 1000)


@dataclass(frozen=True)
class Decision:
    """What to do with a row after an attempt."""

    outcome: Outcome
    retry_in_ms: int | None = None

    @property
    def status(self) -> str:
        return "pending" if self.outcome == "retry" else self.outcome


def decide(
    attempt: int,
    max_attempts: int,
    error: DeliveryError | None,
    backoff: Backoff,
    random: Random,
) -> Decision:
    """The next state after attempt number ``attempt`` (1-based) ended with ``error``."""
    if error is None:
        return Decision("delivered")
    if not error.retriable or attempt >= max_attempts:
        return Decision("dead")
    return Decision("retry", backoff.delay_ms(attempt, random, error.retry_after_ms))


@dataclass(frozen=True)
class Claimed:
    """A row this worker holds for one attempt."""

    id: int
    breach_id: str
    kind: str
    at: int
    receiver: str
    attempt: int
    payload: dict[str, Any] | None

    def breach(self) -> Breach | None:
        return None if self.payload is None else Breach.model_validate(self.payload)


async def enqueue(
    session: AsyncSession, breach: Breach, receivers: Sequence[str], now_ms: int
) -> int:
    """Insert one pending row per receiver; existing ones are kept. Returns rows inserted."""
    if not receivers:
        return 0
    rows = [
        {
            "breach_id": breach.id,
            "kind": breach.kind,
            "at": breach.at,
            "receiver": name,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": ms_to_dt(now_ms),
        }
        for name in receivers
    ]
    stmt = (
        insert(Delivery)
        .values(rows)
        .on_conflict_do_nothing(constraint="uq_delivery_event_receiver")
        .returning(Delivery.id)
    )
    return len((await session.execute(stmt)).all())


async def claim(session: AsyncSession, now_ms: int, lease_ms: int, limit: int) -> list[Claimed]:
    """Take up to ``limit`` due rows (pending and due, or delivering with an expired lease).
    The caller commits right away."""
    now = ms_to_dt(now_ms)
    due = (
        select(Delivery.id)
        .where(Delivery.status.in_(("pending", "delivering")), Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(limit)
        .with_for_update(skip_locked=True)
        .scalar_subquery()
    )
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(due))
        .values(
            status="delivering",
            attempts=Delivery.attempts + 1,
            next_attempt_at=ms_to_dt(now_ms + lease_ms),
        )
        .returning(
            Delivery.id,
            Delivery.breach_id,
            Delivery.kind,
            Delivery.at,
            Delivery.receiver,
            Delivery.attempts,
        )
    )
    rows = (await session.execute(stmt)).all()
    if not rows:
        return []
    keys = [(r.breach_id, r.kind, r.at) for r in rows]
    events = await session.execute(
        select(
            BreachEventRecord.breach_id,
            BreachEventRecord.kind,
            BreachEventRecord.at,
            BreachEventRecord.payload,
        ).where(
            tuple_(BreachEventRecord.breach_id, BreachEventRecord.kind, BreachEventRecord.at).in_(
                keys
            )
        )
    )
    payloads = {(e.breach_id, e.kind, e.at): e.payload for e in events}
    return sorted(
        (
            Claimed(
                id=r.id,
                breach_id=r.breach_id,
                kind=r.kind,
                at=r.at,
                receiver=r.receiver,
                attempt=r.attempts,
                payload=payloads.get((r.breach_id, r.kind, r.at)),
            )
            for r in rows
        ),
        key=lambda c: c.id,
    )


async def finish(
    session: AsyncSession,
    claimed: Claimed,
    decision: Decision,
    *,
    now_ms: int,
    status_code: int | None,
    latency_ms: int,
    error: str | None,
) -> bool:
    """Record the attempt and move the row to its next state. Returns ``False`` when the
    lease was lost (the row was claimed again meanwhile); the attempt is recorded anyway.
    The caller commits."""
    session.add(
        DeliveryAttempt(
            delivery_id=claimed.id,
            attempt=claimed.attempt,
            outcome=decision.outcome,
            status_code=status_code,
            latency_ms=latency_ms,
            error=error,
            attempted_at=ms_to_dt(now_ms),
        )
    )
    values: dict[str, Any] = {"status": decision.status, "last_error": error}
    if decision.outcome == "delivered":
        values["delivered_at"] = ms_to_dt(now_ms)
    elif decision.outcome == "retry":
        values["next_attempt_at"] = ms_to_dt(now_ms + (decision.retry_in_ms or 0))
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.id == claimed.id,
            Delivery.status == "delivering",
            Delivery.attempts == claimed.attempt,
        )
        .values(**values)
        .returning(Delivery.id)
    )
    updated = result.first() is not None
    await session.flush()
    return updated


async def count_open(session: AsyncSession) -> int:
    """Rows still to deliver (pending or delivering)."""
    stmt = select(func.count()).where(Delivery.status.in_(("pending", "delivering")))
    return int((await session.execute(stmt)).scalar_one())
