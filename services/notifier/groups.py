"""Notification groups in PostgreSQL: the timing of :mod:`services.notifier.grouping`
applied to the outbox.

A route with ``groupBy`` holds its notifications: intake stores their outbox rows as
``grouped`` (not claimable) and makes the breach a member of the group
``(receiver, agreement, route, group values)``, created with its first flush due
``group_wait`` later. :class:`GroupFlusher` takes due groups (``FOR UPDATE SKIP
LOCKED``, so replicas share them) and, per group:

* releases every ``grouped`` row of its members (they become ``pending``, due now: the
  workers deliver them together) — the group's content changed;
* if nothing changed but members are still open and ``repeat_interval`` has passed
  since the group last sent, queues a ``repeat.<n>`` reminder for each open member;
* deletes the group once every member is resolved and nothing is held back; otherwise
  moves its next flush ``group_interval`` on (ticks keep their phase; ticks missed while
  no replica ran are skipped).

Messages are not merged: each breach of a flush is still its own message (webhook
consumers get one breach per request); what grouping changes is *when* they go out
and the reminders. Routes without ``groupBy`` notify at once, as before.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier import outbox
from services.notifier.grouping import GroupTiming, group_key
from shared.definitions.model import Route
from shared.models import (
    BreachEventRecord,
    BreachRecord,
    Delivery,
    NotificationGroup,
    NotificationGroupMember,
)
from shared.schemas import Breach
from shared.timeutil import Clock

log = logging.getLogger(__name__)

GROUPED = "grouped"
REPEAT_PREFIX = "repeat."
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


async def flush_due(session: AsyncSession, now_ms: int, limit: int = FLUSH_BATCH) -> int:
    """Flush every due group (see the module docstring). Returns rows made deliverable.
    The caller commits."""
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
        released = (
            await session.execute(
                update(Delivery)
                .where(
                    Delivery.status == GROUPED,
                    Delivery.receiver == group.receiver,
                    Delivery.breach_id.in_(members),
                )
                .values(status="pending", next_attempt_at=outbox.ms_to_dt(now_ms))
                .returning(Delivery.id)
            )
        ).all()
        count = len(released)
        open_members = (
            await session.execute(
                select(BreachRecord.id, BreachRecord.last_event).where(
                    BreachRecord.id.in_(members), BreachRecord.status == "open"
                )
            )
        ).all()
        repeat_due = group.last_sent_at is not None and (
            group.last_sent_at + group.repeat_ms <= now_ms
        )
        if not count and open_members and repeat_due:
            group.repeats += 1
            kind = f"{REPEAT_PREFIX}{group.repeats}"
            for breach_id, payload in open_members:
                await session.execute(
                    insert(BreachEventRecord)
                    .values(breach_id=breach_id, kind=kind, at=now_ms, payload=payload)
                    .on_conflict_do_nothing()
                )
                count += await outbox.enqueue(
                    session,
                    Breach.model_validate(payload),
                    [group.receiver],
                    now_ms,
                    kind=kind,
                    at=now_ms,
                )
        if count:
            group.last_sent_at = now_ms
        total += count
        if not open_members:
            await session.execute(delete(NotificationGroup).where(NotificationGroup.id == group.id))
            continue
        following = group.next_flush_at + group.interval_ms
        if following <= now_ms:  # ticks missed while nobody flushed: keep the phase
            following += ((now_ms - following) // group.interval_ms + 1) * group.interval_ms
        group.next_flush_at = following
    await session.flush()
    return total


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
