"""Intake: breach events from the breaches topic into PostgreSQL.

Per record, in ONE transaction:

1. upsert ``breaches`` (inserted, or updated when this event supersedes the stored one,
   see :mod:`services.notifier.lifecycle`);
2. insert the ``breach_events`` row, ``ON CONFLICT DO NOTHING``;
3. only if that row is new: insert one ``deliveries`` row per routed receiver,
   ``ON CONFLICT DO NOTHING`` on (breach_id, kind, at, receiver). An opening also
   plans its escalation steps (a ``breach_events`` row ``escalation.<n>`` carrying the
   opening's payload, and rows due later, see :mod:`services.notifier.escalation`); a
   resolution goes to the routed receivers plus every receiver notified of the
   opening or an escalation, and cancels pending escalation steps.

Commit order per batch: every record's transaction commits (and every dead letter is
acknowledged by the broker), then the Kafka offsets are committed. A crash in between
replays records whose effects are already stored; steps 2 and 3 make that a no-op, so a
lifecycle event is notified once per receiver.
No rebalance listener is needed: nothing is held in memory between records, so a
revoked partition has nothing to flush, and its new owner's replay is a no-op too.

On a graceful stop the intake reads on to the end of the topic (:meth:`Intake.drain`):
``slawatch up`` stops the notifier after the evaluator, whose own drain may have
published breach events just before; on the memory-only embedded broker they would be
gone at the next start if they were not in the outbox. The end is the high watermark
of each assigned partition from the latest fetch (``end_offsets`` is wrong on the
embedded broker).

Bad input never stops consumption: a record that is not a valid :class:`Breach`, or
that PostgreSQL refuses (a value too long for its column), goes to the dead letter
topic. A breach for an agreement the catalog does not know is recorded without
deliveries and logged. Database outages are not bad input: they end the loop, the
notifier's main restarts it with backoff once PostgreSQL answers (``shared.reconnect``),
and the uncommitted records are consumed again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from aiokafka.errors import CommitFailedError, IllegalStateError
from pydantic import ValidationError
from sqlalchemy import String, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier import escalation, groups, lifecycle, outbox
from services.notifier.catalog import CatalogCache
from services.notifier.metrics import NotifierMetrics
from services.notifier.routing import matching_routes, receivers_of
from shared.deadletter import DeadLetter
from shared.definitions.model import Agreement
from shared.logid import LogEndWatch
from shared.models import BreachEventRecord, BreachRecord
from shared.schemas import Breach
from shared.timeutil import Clock
from shared.topics import Topics

log = logging.getLogger(__name__)

BATCH_RECORDS = 100


def _length(column: str) -> int:
    kind = BreachRecord.__table__.c[column].type
    assert isinstance(kind, String) and kind.length is not None
    return kind.length


COLUMN_LIMITS = {
    "id": _length("id"),
    "objective_id": _length("objective_id"),
    "agreement.name": _length("agreement"),
    "service": _length("service"),
}
POLL_TIMEOUT_MS = 200
#: Of the shutdown grace, kept for the last commit and closing the clients.
DRAIN_RESERVE_S = 1.0


def drain_budget_s(shutdown_grace_s: float) -> float:
    """How long a stopping intake may read on to the end of the topic."""
    return max(shutdown_grace_s - DRAIN_RESERVE_S, shutdown_grace_s / 2)


@dataclass(frozen=True)
class Recorded:
    """What one breach event changed."""

    new_event: bool
    deliveries: int


async def upsert_breach(session: AsyncSession, breach: Breach) -> None:
    """Insert the breach row, or move it to this event's state if the event supersedes."""
    values = {
        "severity": breach.severity,
        "status": lifecycle.status_of(breach.kind),
        "resolved_at": lifecycle.resolved_at_of(breach),
        "last_event": breach.model_dump(mode="json"),
    }
    inserted = await session.execute(
        insert(BreachRecord)
        .values(
            id=breach.id,
            objective_id=breach.objective_id,
            agreement=breach.agreement.name,
            service=breach.service,
            group=breach.group,
            opened_at=breach.opened_at,
            **values,
        )
        .on_conflict_do_nothing(index_elements=[BreachRecord.id])
        .returning(BreachRecord.id)
    )
    if inserted.first() is not None:
        return
    stored = (
        await session.execute(
            select(BreachRecord.last_event).where(BreachRecord.id == breach.id).with_for_update()
        )
    ).scalar_one()
    old_at = int(stored.get("at", 0))
    old_kind = str(stored.get("kind", ""))
    if lifecycle.supersedes(breach.at, breach.kind, old_at, old_kind):
        await session.execute(
            update(BreachRecord)
            .where(BreachRecord.id == breach.id)
            .values(updated_at=func.now(), **values)
        )


async def record_breach(
    session: AsyncSession,
    breach: Breach,
    receivers: list[str],
    now_ms: int,
    steps: Sequence[escalation.PlannedStep] = (),
    group_plans: Sequence[groups.GroupPlan] = (),
) -> Recorded:
    """Steps 1 to 3 above inside the caller's transaction. Receivers that a group holds
    get ``grouped`` rows (see :mod:`services.notifier.groups`)."""
    await upsert_breach(session, breach)
    logged = await session.execute(
        insert(BreachEventRecord)
        .values(
            breach_id=breach.id,
            kind=breach.kind,
            at=breach.at,
            payload=breach.model_dump(mode="json"),
        )
        .on_conflict_do_nothing()
        .returning(BreachEventRecord.breach_id)
    )
    if logged.first() is None:
        return Recorded(new_event=False, deliveries=0)
    held = await groups.join(session, breach.id, group_plans, now_ms) if group_plans else set()
    if breach.kind == "breach.resolved":
        notified = await outbox.notified_receivers(session, breach.id)
        receivers = list(dict.fromkeys([*receivers, *notified]))
        await outbox.cancel_escalations(session, breach.id, "resolved")
        held |= await groups.holding(session, breach.id)
    now_rows = [r for r in receivers if r not in held]
    later = [r for r in receivers if r in held]
    count = await outbox.enqueue(session, breach, now_rows, now_ms)
    count += await outbox.enqueue(session, breach, later, now_ms, status=groups.GROUPED)
    payload = breach.model_dump(mode="json")
    for step in steps:
        await session.execute(
            insert(BreachEventRecord)
            .values(breach_id=breach.id, kind=step.kind, at=breach.at, payload=payload)
            .on_conflict_do_nothing()
        )
        count += await outbox.enqueue(
            session, breach, step.receivers, now_ms, kind=step.kind, due_ms=step.due_ms
        )
    return Recorded(new_event=True, deliveries=count)


@dataclass(frozen=True)
class Planned:
    """Where one breach event goes: receivers, escalation steps, group memberships."""

    receivers: list[str]
    steps: list[escalation.PlannedStep]
    groups: list[groups.GroupPlan]


def plan(breach: Breach, agreement: Agreement | None, now_ms: int) -> Planned:
    """Route the event by the agreement's policy (pure)."""
    if agreement is None:
        return Planned([], [], [])
    routes = matching_routes(breach, agreement.spec.notify)
    immediate = set(receivers_of([r for r in routes if not r.group_by]))
    return Planned(
        receivers=receivers_of(routes),
        steps=escalation.plan(routes, now_ms) if breach.kind == "breach.opened" else [],
        groups=groups.plan(breach, agreement.spec.notify, routes, immediate),
    )


class Intake:
    """Consumes the breaches topic with manual commits (see the module docstring)."""

    def __init__(
        self,
        consumer: Any,
        producer: Any,
        sessions: async_sessionmaker[AsyncSession],
        catalog: CatalogCache,
        metrics: NotifierMetrics,
        topics: Topics,
        clock: Clock,
        on_enqueued: Callable[[], None],
    ) -> None:
        self._consumer = consumer
        self._producer = producer
        self._sessions = sessions
        self._catalog = catalog
        self._metrics = metrics
        self._topics = topics
        self._clock = clock
        self._on_enqueued = on_enqueued
        self._log_end = LogEndWatch(metrics.offset_resets, "notifier")

    async def run(self, stop: asyncio.Event, drain_s: float = 0.0) -> None:
        """Consume until ``stop``; the batch in hand is finished and committed first.
        With ``drain_s``, then read on to the end of the topic (:meth:`drain`)."""
        while not stop.is_set():
            await self._poll()
        if drain_s > 0:
            await self.drain(drain_s)

    async def _poll(self) -> int:
        """One batch, stored and committed; the number of records it held."""
        batches = await self._consumer.getmany(
            timeout_ms=POLL_TIMEOUT_MS, max_records=BATCH_RECORDS
        )
        if not batches:
            await self._log_end.check(self._consumer)
            return 0
        offsets: dict[Any, int] = {}
        count = 0
        for tp, records in batches.items():
            for record in records:
                added = await self.handle(record)
                if added:  # each record commits on its own: its rows are claimable now
                    self._on_enqueued()
                offsets[tp] = record.offset + 1
                count += 1
        await self._commit(offsets)
        self._log_end.advance(batches)
        return count

    async def drain(self, budget_s: float) -> bool:
        """Consume until a poll finds nothing and every assigned partition's position
        is at its high watermark, for at most ``budget_s``. True when read to the end.

        The empty poll comes first because a high watermark is only as recent as the
        last fetch: waiting one poll lets a fetch sent after the stop answer."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + budget_s
        while True:
            if not await self._poll():
                behind = await self._behind()
                if not behind:
                    log.info("breaches topic read to its end")
                    return True
                if loop.time() >= deadline:
                    log.warning(
                        "drain incomplete: partitions not read to their end",
                        extra={"behind": {str(tp): ends for tp, ends in behind.items()}},
                    )
                    return False
            elif loop.time() >= deadline:
                log.warning("drain incomplete: records still arriving at the deadline")
                return False

    async def _behind(self) -> dict[Any, tuple[int, int | None]]:
        """Assigned partitions whose position is short of the high watermark (or whose
        high watermark no fetch reported yet): ``(position, high watermark)``."""
        behind: dict[Any, tuple[int, int | None]] = {}
        for tp in self._consumer.assignment():
            try:
                position = await self._consumer.position(tp)
            except IllegalStateError:  # revoked meanwhile: its new owner reads it
                continue
            highwater = self._consumer.highwater(tp)
            if highwater is None or position < highwater:
                behind[tp] = (position, highwater)
        return behind

    async def _commit(self, offsets: dict[Any, int]) -> None:
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError) as exc:
            # A rebalance took the partitions; the new owner replays, idempotently.
            log.warning("offset commit failed after a rebalance: %s", exc)

    async def handle(self, record: Any) -> int:
        """Store one record (or dead-letter it). Returns the outbox rows inserted."""
        raw: bytes = record.value or b""
        try:
            breach = Breach.from_json(raw)
        except ValidationError as exc:
            await self._dead_letter(record, "invalid_breach", _summary(exc))
            return 0
        too_long = oversized_fields(breach)
        if too_long:
            await self._dead_letter(record, "unstorable_breach", f"too long: {', '.join(too_long)}")
            return 0
        self._metrics.breach_events_received.labels(breach.kind).inc()
        agreement = await self._catalog.agreement(breach.agreement.name)
        now = self._clock()
        planned = plan(breach, agreement, now)
        if agreement is None:
            log.warning(
                "breach for unknown agreement %s: recorded, not delivered",
                breach.agreement.name,
                extra={"breach_id": breach.id, "kind": breach.kind},
            )
        try:
            async with self._sessions() as session, session.begin():
                recorded = await record_breach(
                    session, breach, planned.receivers, now, planned.steps, planned.groups
                )
        except DBAPIError as exc:
            if not _is_data_exception(exc):
                raise
            await self._dead_letter(record, "unstorable_breach", str(exc.orig)[:500])
            return 0
        if recorded.new_event:
            log.info(
                "breach event recorded",
                extra={
                    "breach_id": breach.id,
                    "kind": breach.kind,
                    "deliveries": recorded.deliveries,
                },
            )
        return recorded.deliveries

    async def _dead_letter(self, record: Any, reason: str, detail: str) -> None:
        self._metrics.breach_events_rejected.labels(reason).inc()
        letter = DeadLetter.of(
            "notifier",
            reason,
            record.value or b"",
            at=self._clock(),
            detail=detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )
        await self._producer.send_and_wait(
            self._topics.deadletter, letter.to_json(), key=letter.key
        )
        log.warning(
            "breach record dead-lettered",
            extra={"reason": reason, "partition": record.partition, "offset": record.offset},
        )


def oversized_fields(breach: Breach) -> list[str]:
    """Fields longer than their ``breaches`` / ``breach_events`` columns allow."""
    return [
        name
        for name, value in (
            ("id", breach.id),
            ("objective_id", breach.objective_id),
            ("agreement.name", breach.agreement.name),
            ("service", breach.service),
        )
        if len(value) > COLUMN_LIMITS[name]
    ]


def _is_data_exception(exc: DBAPIError) -> bool:
    """PostgreSQL SQLSTATE class 22 (data exception): this record can never be stored."""
    sqlstate = getattr(exc.orig, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith("22")


def _summary(exc: ValidationError) -> str:
    parts = [
        f"{'.'.join(str(p) for p in e['loc']) or '<record>'}: {e['msg']}" for e in exc.errors()[:5]
    ]
    return "; ".join(parts)[:500]
