"""Notification groups in PostgreSQL: the timing of :mod:`services.notifier.grouping`
applied to the outbox.

A route with ``groupBy`` holds its notifications: intake stores their outbox rows as
``grouped`` (not claimable) and makes the breach a member of the group
``(receiver, agreement, route, group values)``, created with its first flush due
``group_wait`` later. :class:`GroupFlusher` takes due groups (``FOR UPDATE SKIP
LOCKED``, so replicas share them) and, per group:

* marks every ``grouped`` row of its members ``merged`` (terminal: its event goes out
  inside this flush) — the group's content changed;
* when the content changed, or nothing changed but members are still open and
  ``repeat_interval`` has passed since the group last sent, stores ONE flush document
  (``notification_group_flushes``: every member's latest event, firing or resolved,
  and its ack) and queues ONE ``deliveries`` row for it (``breach_id='flush:<id>'``,
  kind ``group.flush``, ``at`` = the flush time): one message per (group, receiver,
  flush), idempotent by (receiver, group key, flush time);
* a group that never sent and whose members all resolved sends nothing (as
  Alertmanager: a resolution goes only where the firing alert went): its rows are
  ``merged`` with that said, and the group is deleted;
* each alert of a flush document says whether this receiver was already sent it firing
  (``told``: a delivered earlier flush of the group had it firing), so at delivery no
  silence drops its resolution (:func:`services.notifier.silencing.muted_by`);
* removes the resolved members it sent (Alertmanager drops resolved alerts once
  notified); deletes the group when no open member is left; otherwise moves its next
  flush ``group_interval`` on (ticks keep their phase; ticks missed while no replica
  ran are skipped).

Routes without ``groupBy`` notify at once, one message per breach event, as before;
escalation steps are never grouped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Row, String, cast, delete, func, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier import outbox
from services.notifier.grouping import GroupTiming, group_key
from services.notifier.message import GROUP_FLUSH
from services.notifier.routing import breach_value
from shared.definitions.model import Route
from shared.models import (
    BreachAck,
    BreachRecord,
    Delivery,
    NotificationGroup,
    NotificationGroupFlush,
    NotificationGroupMember,
)
from shared.schemas import Breach
from shared.timeutil import Clock

log = logging.getLogger(__name__)

GROUPED = "grouped"
FLUSH_BATCH = 50


@dataclass(frozen=True)
class GroupPlan:
    receiver: str
    key: str
    timing: GroupTiming


def plan(
    breach: Breach, policy: Sequence[Route], taken: Sequence[Route], immediate: set[str]
) -> list[GroupPlan]:
    """Group memberships for the routes that took ``breach`` (receivers an ungrouped
    route also took are notified at once instead)."""
    plans: list[GroupPlan] = []
    for route in taken:
        if not route.group_by:
            continue
        index = policy.index(route)
        key = f"{breach.agreement.name}#{index}:{group_key(breach, route.group_by)}"
        timing = GroupTiming.parse(route.group_wait, route.group_interval, route.repeat_interval)
        plans.extend(GroupPlan(r, key, timing) for r in route.receivers if r not in immediate)
    return plans


async def join(
    session: AsyncSession, breach_id: str, plans: Sequence[GroupPlan], now_ms: int
) -> set[str]:
    """Make the breach a member of each planned group (created if new). Returns the
    receivers whose notifications the groups hold."""
    for item in plans:
        created = await session.execute(
            insert(NotificationGroup)
            .values(
                receiver=item.receiver,
                group_key=item.key[:1024],
                created_at=now_ms,
                next_flush_at=now_ms + item.timing.wait_ms,
                interval_ms=item.timing.interval_ms,
                repeat_ms=item.timing.repeat_ms,
                repeats=0,
            )
            .on_conflict_do_nothing(constraint="uq_notification_group")
            .returning(NotificationGroup.id)
        )
        group_id = created.scalar()
        if group_id is None:
            group_id = (
                await session.execute(
                    select(NotificationGroup.id).where(
                        NotificationGroup.receiver == item.receiver,
                        NotificationGroup.group_key == item.key[:1024],
                    )
                )
            ).scalar_one()
        await session.execute(
            insert(NotificationGroupMember)
            .values(group_id=group_id, breach_id=breach_id)
            .on_conflict_do_nothing()
        )
    return {item.receiver for item in plans}


async def holding(session: AsyncSession, breach_id: str) -> set[str]:
    """Receivers with a group that has this breach as a member."""
    rows = await session.execute(
        select(NotificationGroup.receiver)
        .join(NotificationGroupMember, NotificationGroupMember.group_id == NotificationGroup.id)
        .where(NotificationGroupMember.breach_id == breach_id)
    )
    return set(rows.scalars())


def group_labels(key: str, breach: Breach) -> dict[str, str]:
    """``groupLabels`` of a group: its agreement and its ``groupBy`` values, read back
    from the stored key (``<agreement>#<route>:<k>=<v>,...``) and the member ``breach``
    (a name that is not a key of the breach, e.g. a piece of a value holding a comma,
    is left out)."""
    labels = {"agreement": breach.agreement.name}
    _, _, values = key.partition(":")
    for part in values.split(","):
        name = part.partition("=")[0]
        if not name or name == "breach":
            continue
        value = breach_value(breach, name)
        if value is not None:
            labels[name] = value
    return labels


async def flush_due(session: AsyncSession, now_ms: int, limit: int = FLUSH_BATCH) -> int:
    """Flush every due group (see the module docstring). Returns rows made deliverable
    (one per group that sent). The caller commits."""
    due = (
        await session.execute(
            select(NotificationGroup)
            .where(NotificationGroup.next_flush_at <= now_ms)
            .order_by(NotificationGroup.next_flush_at)
            .limit(limit)
            .with_for_update(skip_locked=True)
        )
    ).scalars()
    total = 0
    for group in list(due):
        members = select(NotificationGroupMember.breach_id).where(
            NotificationGroupMember.group_id == group.id
        )
        open_count = (
            await session.execute(
                select(func.count())
                .select_from(BreachRecord)
                .where(BreachRecord.id.in_(members), BreachRecord.status == "open")
            )
        ).scalar_one()
        # Nothing of the group ever went out and nothing fires: nothing to tell.
        unsent = group.last_sent_at is None and open_count == 0
        note = (
            f"resolved before the group's first flush at {now_ms}: nothing sent"
            if unsent
            else f"sent in group flush at {now_ms}"
        )
        merged = (
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.status == GROUPED,
                    Delivery.receiver == group.receiver,
                    Delivery.breach_id.in_(members),
                )
                .values(status=outbox.MERGED, last_error=note)
                .returning(Delivery.id)
            )
        ).all()
        breaches = (
            await session.execute(
                select(BreachRecord.id, BreachRecord.status, BreachRecord.last_event)
                .where(BreachRecord.id.in_(members))
                .order_by(BreachRecord.id)
            )
        ).all()
        open_members = [b for b in breaches if b.status == "open"]
        repeat_due = group.last_sent_at is not None and (
            group.last_sent_at + group.repeat_ms <= now_ms
        )
        changed = bool(merged)
        if not changed and open_members and repeat_due:
            group.repeats += 1
        if breaches and not unsent and (changed or (open_members and repeat_due)):
            total += await _send(session, group, breaches, now_ms)
            group.last_sent_at = now_ms
            # Resolved members were notified: they leave the group, as in Alertmanager.
            await session.execute(
                delete(NotificationGroupMember).where(
                    NotificationGroupMember.group_id == group.id,
                    NotificationGroupMember.breach_id.in_(
                        [b.id for b in breaches if b.status != "open"]
                    ),
                )
            )
        if not open_members:
            await session.execute(delete(NotificationGroup).where(NotificationGroup.id == group.id))
            continue
        following = group.next_flush_at + group.interval_ms
        if following <= now_ms:  # ticks missed while nobody flushed: keep the phase
            following += ((now_ms - following) // group.interval_ms + 1) * group.interval_ms
        group.next_flush_at = following
    await session.flush()
    return total


async def _told(session: AsyncSession, group: NotificationGroup) -> set[str]:
    """Breaches an earlier flush of this group delivered to its receiver as firing."""
    documents = await session.execute(
        select(NotificationGroupFlush.document)
        .join(
            Delivery,
            Delivery.breach_id
            == func.concat(outbox.FLUSH_PREFIX, cast(NotificationGroupFlush.id, String)),
        )
        .where(
            NotificationGroupFlush.receiver == group.receiver,
            NotificationGroupFlush.group_key == group.group_key,
            Delivery.receiver == group.receiver,
            Delivery.kind == GROUP_FLUSH,
            Delivery.status == "delivered",
        )
    )
    return {
        str(alert["breach"]["id"])
        for (document,) in documents
        for alert in document.get("alerts", [])
        if alert.get("status") == "firing"
    }


async def _send(
    session: AsyncSession, group: NotificationGroup, breaches: Sequence[Row[Any]], now_ms: int
) -> int:
    """Store the flush document (every member's latest event, its ack) and queue its one
    delivery. Returns rows inserted (0 when this flush was already stored)."""
    ids = [b.id for b in breaches]
    told = await _told(session, group)
    acks = {
        a.breach_id: a
        for a in (await session.execute(select(BreachAck).where(BreachAck.breach_id.in_(ids))))
        .scalars()
        .all()
    }
    alerts: list[dict[str, Any]] = []
    for b in breaches:
        ack = acks.get(b.id)
        alerts.append(
            {
                "status": "firing" if b.status == "open" else "resolved",
                "kind": b.last_event.get("kind", "breach.opened"),
                "breach": b.last_event,
                "ack": None
                if ack is None
                else {"by": ack.acked_by, "comment": ack.comment, "at": ack.at},
                "told": b.id in told,
            }
        )
    first = Breach.model_validate(breaches[0].last_event)
    document = {
        "group_key": group.group_key,
        "group_labels": group_labels(group.group_key, first),
        "alerts": alerts,
    }
    stored = await session.execute(
        insert(NotificationGroupFlush)
        .values(
            receiver=group.receiver, group_key=group.group_key, flush_at=now_ms, document=document
        )
        .on_conflict_do_nothing(constraint="uq_notification_group_flush")
        .returning(NotificationGroupFlush.id)
    )
    flush_id = stored.scalar()
    if flush_id is None:
        return 0
    inserted = await session.execute(
        insert(Delivery)
        .values(
            breach_id=f"{outbox.FLUSH_PREFIX}{flush_id}",
            kind=GROUP_FLUSH,
            at=now_ms,
            receiver=group.receiver,
            status="pending",
            attempts=0,
            next_attempt_at=outbox.ms_to_dt(now_ms),
            created_at=outbox.ms_to_dt(now_ms),
        )
        .on_conflict_do_nothing(constraint="uq_delivery_event_receiver")
        .returning(Delivery.id)
    )
    return len(inserted.all())


class GroupFlusher:
    """Flushes due groups every ``interval_ms`` until stopped; rings the workers."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        on_released: Callable[[], None],
        interval_ms: int,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._on_released = on_released
        self._interval_ms = interval_ms

    async def run_once(self) -> int:
        async with self._sessions() as session, session.begin():
            released = await flush_due(session, self._clock())
        if released:
            self._on_released()
        return released

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            try:
                await self.run_once()
            except (SQLAlchemyError, OSError) as exc:
                log.warning("group flush failed; trying again: %s", exc)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_ms / 1000)
