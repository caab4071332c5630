"""The durable outbox: one ``deliveries`` row per (breach event, receiver), or per
(group flush, receiver) for grouped routes (``breach_id='flush:<id>'``, kind
``group.flush``, see :mod:`services.notifier.groups`; the events it carries keep their
own rows, ``grouped`` until the flush, then ``merged``).

State machine (``status``; ``attempts`` counts claims, i.e. attempts started)::

    pending ──claim──▶ delivering ──2xx─────────────────────────▶ delivered
       ▲  ▲  ▲             │  │  │
       │  │  │             │  │  ├─retriable, attempts < max──▶ pending, due at now + backoff
       │  │  │             │  │  └─not retriable, or attempts = max──▶ dead
       │  │  └─circuit open: deferred, attempt given back─┘  ├─a silence matches──▶ suppressed
       │  └ lease expired: a crashed worker's row is claimed again  └─escalation, but acked
       └ (escalation rows are created pending, due later)              or resolved──▶ cancelled

Claiming is one short transaction: ``SELECT id, receiver … FOR UPDATE SKIP LOCKED
LIMIT k`` locks due rows (receivers the worker has no room for left out), the worker
chooses among them (:func:`services.notifier.slots.choose`: at most so many per
receiver), and ``UPDATE … WHERE id IN (chosen)`` sets ``status='delivering'``,
``attempts+1`` and ``next_attempt_at`` to the lease expiry; the commit releases the
rows not chosen. The delivery runs outside any row lock. Replicas never
deliver one row at the same time: a row is claimable again only after its lease, and
the lease is longer than a delivery can take (the worker enforces a total deadline).
Finishing is fenced by ``attempts``: a worker whose lease was taken over finds
``attempts`` changed and does not touch the row (its attempt is still recorded).

All times here come from the injected clock (epoch ms), not from ``now()`` in SQL,
so tests control them; replicas need roughly synchronised clocks, as leases do anyway.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal

from sqlalchemy import func, or_, select, tuple_, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.backoff import Backoff, Random
from services.notifier.channels.base import DeliveryError
from services.notifier.message import ACKNOWLEDGED, ESCALATION_PREFIX, GROUP_FLUSH
from shared.models import (
    BreachAck,
    BreachEventRecord,
    BreachRecord,
    Delivery,
    DeliveryAttempt,
    NotificationGroupFlush,
)
from shared.schemas import Breach

Outcome = Literal["delivered", "retry", "dead", "suppressed", "cancelled"]
OPEN_STATUSES = ("pending", "delivering")
FLUSH_PREFIX = "flush:"
"""``breach_id`` of a group flush row: ``flush:<notification_group_flushes.id>``."""
RESOLVED = "breach.resolved"
MERGED = "merged"
"""A grouped row whose event went out inside a group flush (terminal)."""


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
    breach_status: str | None = None
    acked_by: str | None = None
    ack_comment: str | None = None
    acked_at: int | None = None
    flush: dict[str, Any] | None = None
    """For a ``group.flush`` row: the stored flush document (see ``groups``)."""
    told: bool = False
    """A resolution's receiver was delivered a firing notification of the breach (so no
    silence mutes the resolution)."""
    queued_at: int = 0
    """When the row was queued: the ack link's life counts from here, so every attempt
    of the row sends the same bytes."""

    def breach(self) -> Breach | None:
        if self.payload is None or self.flush is not None:
            return None
        return Breach.model_validate(self.payload)


async def enqueue(
    session: AsyncSession,
    breach: Breach,
    receivers: Sequence[str],
    now_ms: int,
    *,
    kind: str | None = None,
    at: int | None = None,
    due_ms: int | None = None,
    status: str = "pending",
) -> int:
    """Insert one pending row per receiver (for ``kind``/``at``, by default the event's
    own, due at ``due_ms``, by default now); existing ones are kept. Returns rows inserted."""
    if not receivers:
        return 0
    rows = [
        {
            "breach_id": breach.id,
            "kind": kind or breach.kind,
            "at": breach.at if at is None else at,
            "receiver": name,
            "status": status,
            "attempts": 0,
            "next_attempt_at": ms_to_dt(now_ms if due_ms is None else due_ms),
            "created_at": ms_to_dt(now_ms),
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


Chooser = Callable[[Sequence[tuple[int, str]]], Sequence[int]]
"""Picks the ids to claim among locked due ``(id, receiver)`` candidates, in due order."""

CANDIDATES_PER_SLOT = 2
"""With a chooser, a claim looks at this many candidates per row it may take: room to
pass over a receiver's rows beyond its bound without a second round trip."""


async def claim(
    session: AsyncSession,
    now_ms: int,
    lease_ms: int,
    limit: int,
    *,
    skip_receivers: Collection[str] = (),
    choose: Chooser | None = None,
) -> list[Claimed]:
    """Take up to ``limit`` due rows (pending and due, or delivering with an expired lease),
    none of ``skip_receivers``; ``choose`` picks among the candidates (by default the
    first ``limit``). The caller commits right away."""
    now = ms_to_dt(now_ms)
    window = limit if choose is None else limit * CANDIDATES_PER_SLOT
    due = (
        select(Delivery.id, Delivery.receiver)
        .where(Delivery.status.in_(OPEN_STATUSES), Delivery.next_attempt_at <= now)
        .order_by(Delivery.next_attempt_at, Delivery.id)
        .limit(window)
        .with_for_update(skip_locked=True)
    )
    if skip_receivers:
        due = due.where(Delivery.receiver.not_in(sorted(skip_receivers)))
    candidates = [(r.id, r.receiver) for r in await session.execute(due)]
    chosen = [i for i, _ in candidates] if choose is None else list(choose(candidates))
    chosen = chosen[:limit]
    if not chosen:
        return []
    stmt = (
        update(Delivery)
        .where(Delivery.id.in_(chosen))
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
            Delivery.created_at,
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
    flush_ids = [int(r.breach_id.removeprefix(FLUSH_PREFIX)) for r in rows if r.kind == GROUP_FLUSH]
    flushes: dict[str, dict[str, Any]] = {}
    if flush_ids:
        stored = await session.execute(
            select(NotificationGroupFlush.id, NotificationGroupFlush.document).where(
                NotificationGroupFlush.id.in_(flush_ids)
            )
        )
        flushes = {f"{FLUSH_PREFIX}{f.id}": f.document for f in stored}
    ids = list({r.breach_id for r in rows})
    status_rows = await session.execute(
        select(BreachRecord.id, BreachRecord.status).where(BreachRecord.id.in_(ids))
    )
    statuses: dict[str, str] = {breach_id: status for breach_id, status in status_rows}
    acks = {
        a.breach_id: a
        for a in (await session.execute(select(BreachAck).where(BreachAck.breach_id.in_(ids))))
        .scalars()
        .all()
    }
    told = await told_of_opening(
        session, [(r.breach_id, r.receiver) for r in rows if r.kind == RESOLVED]
    )
    return sorted(
        (
            Claimed(
                id=r.id,
                breach_id=r.breach_id,
                kind=r.kind,
                at=r.at,
                receiver=r.receiver,
                attempt=r.attempts,
                payload=flushes.get(r.breach_id, payloads.get((r.breach_id, r.kind, r.at))),
                flush=flushes.get(r.breach_id) if r.kind == GROUP_FLUSH else None,
                breach_status=statuses.get(r.breach_id),
                acked_by=None if r.breach_id not in acks else acks[r.breach_id].acked_by,
                ack_comment=None if r.breach_id not in acks else acks[r.breach_id].comment,
                acked_at=None if r.breach_id not in acks else acks[r.breach_id].at,
                told=r.kind == RESOLVED and (r.breach_id, r.receiver) in told,
                queued_at=dt_to_ms(r.created_at),
            )
            for r in rows
        ),
        key=lambda c: c.id,
    )


async def told_of_opening(
    session: AsyncSession, pairs: Sequence[tuple[str, str]]
) -> set[tuple[str, str]]:
    """The ``(breach id, receiver)`` pairs whose receiver was delivered a firing
    notification of the breach (opened, updated, an escalation step, ...)."""
    if not pairs:
        return set()
    rows = await session.execute(
        select(Delivery.breach_id, Delivery.receiver)
        .where(
            tuple_(Delivery.breach_id, Delivery.receiver).in_(pairs),
            Delivery.status == "delivered",
            Delivery.kind.not_in((RESOLVED, ACKNOWLEDGED)),
        )
        .distinct()
    )
    return {(r.breach_id, r.receiver) for r in rows}


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


async def defer(session: AsyncSession, claimed: Claimed, until_ms: int) -> bool:
    """Put a claimed row back, due at ``until_ms``, giving its attempt back (the circuit
    of its receiver is open: nothing was tried). Fenced like :func:`finish`."""
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.id == claimed.id,
            Delivery.status == "delivering",
            Delivery.attempts == claimed.attempt,
        )
        .values(
            status="pending",
            attempts=Delivery.attempts - 1,
            next_attempt_at=ms_to_dt(until_ms),
        )
        .returning(Delivery.id)
    )
    return result.first() is not None


async def cancel_escalations(session: AsyncSession, breach_id: str, why: str) -> int:
    """End every pending escalation row of a breach as ``cancelled``."""
    result = await session.execute(
        update(Delivery)
        .where(
            Delivery.breach_id == breach_id,
            Delivery.kind.startswith(ESCALATION_PREFIX),
            Delivery.status == "pending",
        )
        .values(status="cancelled", last_error=why)
        .returning(Delivery.id)
    )
    return len(result.all())


async def notified_receivers(session: AsyncSession, breach_id: str) -> list[str]:
    """Receivers notified (or being notified) of a breach's opening or its escalations."""
    stmt = (
        select(Delivery.receiver)
        .where(
            Delivery.breach_id == breach_id,
            or_(Delivery.kind == "breach.opened", Delivery.kind.startswith(ESCALATION_PREFIX)),
            Delivery.status.in_(("delivered", "pending", "delivering", "grouped", MERGED)),
        )
        .distinct()
        .order_by(Delivery.receiver)
    )
    return list((await session.execute(stmt)).scalars())


async def count_open(session: AsyncSession) -> int:
    """Rows still to deliver (pending, delivering, or held by a notification group)."""
    stmt = select(func.count()).where(Delivery.status.in_(("pending", "delivering", "grouped")))
    return int((await session.execute(stmt)).scalar_one())
