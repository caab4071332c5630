"""Delivery workers: claim due outbox rows, deliver each through its channel, record.

A worker holds up to ``WorkerConfig.slots`` rows at once, each delivered in its own
task, and at most ``WorkerConfig.per_receiver`` of them for one receiver
(:mod:`services.notifier.slots`). It claims (one short committed transaction) as
many due rows as it has free slots, leaving out receivers at their bound, starts
their deliveries, and claims again when a slot frees, the :class:`Doorbell` rings
(intake inserted rows in this process; ``main`` on stop) or the poll interval (or a
retry of its own) comes due. So a receiver that hangs holds only its own bounded
share of slots until its attempts time out, and every other receiver's rows go out
meanwhile: nothing waits for a batch to finish.

Stages for one row, with one ``now`` (:mod:`services.notifier.stages`): cancelled
escalation (acked or resolved) → silences and maintenance windows (``suppressed``)
→ circuit breaker of the receiver (deferred, attempt given back) → resolve receiver
→ resolve channel → deliver with a total deadline → decide
(:func:`services.notifier.outbox.decide`) → record → dead letter when the row went dead.

A ``group.flush`` row (see :mod:`services.notifier.groups`) goes through the same
stages as one message: silences drop the muted alerts from it (all muted:
``suppressed``), then the channel's ``deliver_group`` sends the rest at once.

Delivery is at least once: a worker that dies (or loses its database) between the
receiver's answer and the recorded outcome leaves the row ``delivering``; after the
lease it is claimed and sent again with the same ``Idempotency-Key``. Database errors
are not retried here: a delivery task that fails ends its worker (the deliveries it
still holds are cancelled, their rows claimed again after the lease); the notifier's
main restarts the worker with backoff when the error is an outage
(``shared.reconnect``), and stops the service on any other.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier import outbox
from services.notifier.acklink import AckLinks
from services.notifier.backoff import Backoff, Random
from services.notifier.breaker import CircuitBreakers
from services.notifier.catalog import CatalogCache
from services.notifier.channels.base import Channel, DeliveryError, DeliveryResult, Reason
from services.notifier.message import (
    Ack,
    GroupNotification,
    Notification,
    console_url,
    objective_of,
)
from services.notifier.metrics import NotifierMetrics
from services.notifier.outbox import Claimed
from services.notifier.silencing import MuteWindow, muted_by
from services.notifier.slots import Slots, claim_again, wake_in_ms
from services.notifier.stages import Defer, Skip, before_attempt
from shared.definitions.model import Objective
from shared.models import NotifierSilence
from shared.schemas import Breach
from shared.settings import Settings
from shared.timeutil import Clock

log = logging.getLogger(__name__)

BATCH_SIZE = 10
"""Delivery slots of one worker: rows it holds (claimed, in delivery) at once."""
PER_RECEIVER = 4
"""Of a worker's slots, at most this many for one receiver."""
LEASE_MARGIN_MS = 10_000
DEADLINE_MARGIN_MS = 1_000


class Doorbell:
    """Wakes every waiting worker at once; a ring during a claim is not lost, because a
    waiter takes the current event *before* it claims."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def ring(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    def ticket(self) -> asyncio.Event:
        """The event the next :meth:`ring` sets."""
        return self._event


@dataclass(frozen=True)
class WorkerConfig:
    """What a worker needs from the settings."""

    max_attempts: int
    backoff: Backoff
    deadline_ms: int
    lease_ms: int
    poll_interval_ms: int
    slots: int = BATCH_SIZE
    per_receiver: int = PER_RECEIVER

    @classmethod
    def from_settings(
        cls, settings: Settings, lease_margin_ms: int = LEASE_MARGIN_MS
    ) -> WorkerConfig:
        deadline = settings.delivery_timeout_ms + DEADLINE_MARGIN_MS
        return cls(
            max_attempts=settings.delivery_max_attempts,
            backoff=Backoff.from_settings(settings),
            deadline_ms=deadline,
            # Longer than any delivery may take, so no second replica claims a row in flight.
            lease_ms=deadline + lease_margin_ms,
            poll_interval_ms=settings.delivery_poll_interval_ms,
        )


DeadLetterSink = Callable[[Claimed, str, str], Awaitable[None]]
"""Called with a row that went dead, its channel label and the last error."""


class DeliveryWorker:
    """One claim loop and its delivery slots; run several per process and several
    processes safely."""

    def __init__(
        self,
        name: str,
        sessions: async_sessionmaker[AsyncSession],
        catalog: CatalogCache,
        channels: Mapping[str, Channel],
        metrics: NotifierMetrics,
        config: WorkerConfig,
        clock: Clock,
        random: Random,
        doorbell: Doorbell,
        *,
        breakers: CircuitBreakers | None = None,
        links: AckLinks | None = None,
        on_dead: DeadLetterSink | None = None,
    ) -> None:
        self.name = name
        self._sessions = sessions
        self._catalog = catalog
        self._channels = channels
        self._metrics = metrics
        self._config = config
        self._clock = clock
        self._random = random
        self._doorbell = doorbell
        self._breakers = breakers if breakers is not None else CircuitBreakers()
        self._links = links if links is not None else AckLinks(b"", "http://127.0.0.1:8082")
        self._on_dead = on_dead
        self._soonest_retry_ms: int | None = None
        self._slots = Slots(config.slots, config.per_receiver)
        self._freed = Doorbell()  # rung when a delivery of ours ends
        self._deliveries: set[asyncio.Task[None]] = set()
        self._failure: BaseException | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; deliveries in flight are finished first. Cancelled, it
        cancels them (their rows are claimed again after the lease)."""
        try:
            while not stop.is_set():
                tickets = (self._doorbell.ticket(), self._freed.ticket())
                await self._fill()
                if stop.is_set():
                    break
                wait_ms = wake_in_ms(
                    self._clock(), self._config.poll_interval_ms, self._soonest_retry_ms
                )
                self._soonest_retry_ms = None
                await _first_of(tickets, wait_ms / 1000)
                self._raise_failure()
            await self._drain()
        finally:
            await self._cancel_deliveries()
        self._raise_failure()

    async def run_once(self) -> int:
        """Claim what the free slots take, deliver it, and wait until those deliveries
        ended. Returns the number of rows handled."""
        handled = await self._fill()
        await self._drain()
        self._raise_failure()
        return handled

    async def _fill(self) -> int:
        """Claim into the free slots and start a delivery per claimed row."""
        started = 0
        while (free := self._slots.free()) > 0:
            self._raise_failure()
            full = self._slots.full()
            now = self._clock()
            async with self._sessions() as session, session.begin():
                claimed = await outbox.claim(
                    session,
                    now,
                    self._config.lease_ms,
                    free,
                    skip_receivers=full,
                    choose=self._slots.choose,
                )
                windows = (
                    [*self._catalog.windows, *await active_api_silences(session, now)]
                    if claimed
                    else []
                )
            # Everything from here to the end of an attempt fits in the lease.
            deadline = asyncio.get_running_loop().time() + self._config.deadline_ms / 1000
            for row in claimed:
                self._start(row, deadline, windows)
            started += len(claimed)
            if not claim_again(self._slots.free(), full, self._slots.full()):
                break
        return started

    def _start(self, row: Claimed, deadline: float, windows: Sequence[MuteWindow]) -> None:
        self._slots.take(row.receiver)
        task = asyncio.create_task(
            self._deliver(row, deadline, windows), name=f"{self.name}/delivery-{row.id}"
        )
        self._deliveries.add(task)
        task.add_done_callback(functools.partial(self._ended, row.receiver))

    def _ended(self, receiver: str, task: asyncio.Task[None]) -> None:
        """Done callback of a delivery: free its slot, keep its failure for the loop
        to raise (it fails the worker), and wake the loop to fill the slot."""
        self._deliveries.discard(task)
        self._slots.release(receiver)
        if not task.cancelled() and (error := task.exception()) is not None:
            log.error("delivery task %s failed", task.get_name(), exc_info=error)
            self._failure = self._failure or error
        self._freed.ring()

    def _raise_failure(self) -> None:
        if self._failure is not None:
            raise self._failure

    async def _drain(self) -> None:
        """Until every delivery in flight has ended (failures stay for the caller)."""
        while self._deliveries:
            await asyncio.wait(set(self._deliveries))

    async def _cancel_deliveries(self) -> None:
        for task in self._deliveries:
            task.cancel()
        await asyncio.gather(*self._deliveries, return_exceptions=True)

    def _group(self, row: Claimed, now: int, windows: Sequence[MuteWindow]) -> GroupNotification:
        """The flush document of a ``group.flush`` row, without its muted alerts."""
        document = row.flush or {}
        alerts: list[Notification] = []
        for alert in document.get("alerts", []):
            breach = Breach.model_validate(alert["breach"])
            if muted_by(breach, windows, now, told=bool(alert.get("told"))) is not None:
                continue
            stored = alert.get("ack")
            ack = None if stored is None else Ack(stored["by"], stored["comment"], stored["at"])
            resolved = alert["status"] == "resolved"
            alerts.append(
                Notification(
                    breach=breach,
                    kind=alert["kind"],
                    at=breach.at,
                    status_url=self._links.status_url(breach.id),
                    ack_url=None
                    if ack is not None or resolved
                    else self._links.url(breach.id, row.queued_at),
                    console_url=console_url(self._links.base_url, breach.id),
                    ack=ack,
                    objective=self._objective(breach),
                )
            )
        return GroupNotification(
            receiver=row.receiver,
            group_key=str(document.get("group_key", "")),
            at=row.at,
            alerts=tuple(alerts),
            group_labels=dict(document.get("group_labels", {})),
        )

    async def _deliver(self, row: Claimed, deadline: float, windows: Sequence[MuteWindow]) -> None:
        now = self._clock()  # the one now of the stages before the attempt
        group = self._group(row, now, windows) if row.flush is not None else None
        verdict = before_attempt(row, group, windows, self._breakers, now)
        if isinstance(verdict, Skip):
            await self._skip(row, verdict, now)
            return
        if isinstance(verdict, Defer):
            async with self._sessions() as session, session.begin():
                await outbox.defer(session, row, verdict.until_ms)
            self._metrics.circuit_deferrals.inc()
            self._note_retry(verdict.until_ms)
            return
        channel_name, result = await self._attempt(row, deadline, now, group)
        await self._record(row, channel_name, result)

    def _note_retry(self, due_ms: int) -> None:
        """Wake for a retry of ours that comes due before the next poll."""
        self._soonest_retry_ms = min(due_ms, self._soonest_retry_ms or due_ms)

    async def _skip(self, row: Claimed, skip: Skip, now: int) -> None:
        async with self._sessions() as session, session.begin():
            await outbox.finish(
                session,
                row,
                outbox.Decision(skip.outcome),
                now_ms=now,
                status_code=None,
                latency_ms=0,
                error=skip.why,
            )
        self._metrics.notifications.labels("none", skip.outcome).inc()
        log.info(
            "delivery %s",
            skip.outcome,
            extra={"delivery_id": row.id, "receiver": row.receiver, "why": skip.why},
        )

    async def _record(
        self, row: Claimed, channel_name: str, result: DeliveryResult | DeliveryError
    ) -> None:
        """The stages after the attempt: decide, account the breaker, record, count."""
        error = result if isinstance(result, DeliveryError) else None
        decision = outbox.decide(
            row.attempt, self._config.max_attempts, error, self._config.backoff, self._random
        )
        now = self._clock()  # the attempt's end
        change = self._breakers.record(
            row.receiver, error is None, error is not None and error.retriable, now
        )
        if change is not None:
            log.warning("circuit %s", change, extra={"receiver": row.receiver})
            self._metrics.circuit_changes.labels(change).inc()
        error_text = None if error is None else f"{error.reason.value}: {error}"
        async with self._sessions() as session, session.begin():
            kept = await outbox.finish(
                session,
                row,
                decision,
                now_ms=now,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                error=error_text,
            )
        if decision.retry_in_ms is not None:
            self._note_retry(now + decision.retry_in_ms)
        if not kept:
            log.warning("lease lost; another worker owns delivery %d now", row.id)
        self._metrics.notifications.labels(channel_name, decision.outcome).inc()
        if error is not None:
            self._metrics.delivery_failures.labels(channel_name, error.reason.value).inc()
        else:
            breach = row.breach()
            if breach is not None:
                latency_s = max(0, now - breach.detected_at) / 1000
                self._metrics.delivery_latency.labels(channel_name).observe(latency_s)
        if decision.outcome == "dead" and kept:
            reason = "unknown" if error is None else error.reason.value
            self._metrics.deliveries_dead.labels(channel_name, reason).inc()
            if self._on_dead is not None:
                await self._on_dead(row, channel_name, error_text or "")
        log.log(
            logging.WARNING if decision.outcome == "dead" else logging.INFO,
            "delivery %s",
            decision.outcome,
            extra={
                "delivery_id": row.id,
                "breach_id": row.breach_id,
                "kind": row.kind,
                "receiver": row.receiver,
                "attempt": row.attempt,
                "reason": None if error is None else error.reason.value,
                "retry_in_ms": decision.retry_in_ms,
            },
        )

    def _notification(self, row: Claimed, breach: Breach) -> Notification:
        ack = (
            None
            if row.acked_by is None
            else Ack(row.acked_by, row.ack_comment, row.acked_at or row.at)
        )
        return Notification(
            breach=breach,
            kind=row.kind,
            at=row.at,
            status_url=self._links.status_url(breach.id),
            ack_url=None if ack is not None else self._links.url(breach.id, row.queued_at),
            console_url=console_url(self._links.base_url, breach.id),
            ack=ack,
            objective=self._objective(breach),
        )

    def _objective(self, breach: Breach) -> Objective | None:
        """The objective's definition, for its SLI's unit (the catalog as loaded)."""
        return objective_of(self._catalog.current.agreements.get(breach.agreement.name), breach)

    async def _attempt(
        self, row: Claimed, deadline: float, now: int, group: GroupNotification | None = None
    ) -> tuple[str, DeliveryResult | DeliveryError]:
        """One attempt, finished by ``deadline`` (loop time); returns the channel label and
        the result. Every failure comes back as a :class:`DeliveryError`."""
        label = "none"
        try:
            async with asyncio.timeout_at(deadline):
                if row.attempt > self._config.max_attempts:
                    # Only reachable when the worker of the last attempt died mid-delivery.
                    raise DeliveryError(
                        Reason.ABANDONED, "lease expired on the last attempt", retriable=False
                    )
                breach = row.breach()
                if breach is None and group is None:
                    raise DeliveryError(
                        Reason.INTERNAL, "breach event missing from breach_events", retriable=False
                    )
                receiver = await self._catalog.receiver(row.receiver)
                if receiver is None:
                    # The route names a receiver not applied (yet): worth retrying.
                    raise DeliveryError(
                        Reason.UNKNOWN_RECEIVER,
                        f"no receiver named {row.receiver!r}",
                        retriable=True,
                    )
                label = receiver.spec.type
                channel = self._channels.get(label)
                if channel is None:
                    raise DeliveryError(
                        Reason.UNSUPPORTED_CHANNEL,
                        f"no channel for receiver type {label!r}",
                        retriable=False,
                    )
                if group is not None:
                    return label, await channel.deliver_group(group, receiver)
                assert breach is not None  # checked above; for mypy
                note = self._notification(row, breach)
                return label, await channel.deliver(note, receiver)
        except DeliveryError as exc:
            return label, exc
        except TimeoutError:
            return label, DeliveryError(
                Reason.TIMEOUT, "delivery deadline exceeded", retriable=True
            )
        except Exception as exc:  # a channel bug must not kill the worker
            log.exception("channel %s failed unexpectedly", label)
            return label, DeliveryError(
                Reason.INTERNAL, f"{type(exc).__name__} in channel", retriable=True
            )


async def _first_of(events: Sequence[asyncio.Event], timeout_s: float) -> None:
    """Until one of ``events`` is set, or ``timeout_s`` passed."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, timeout=timeout_s, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()


async def active_api_silences(session: AsyncSession, now_ms: int) -> list[MuteWindow]:
    """Silences created through the API that are active at ``now_ms``."""
    rows = await session.execute(
        select(NotifierSilence).where(
            NotifierSilence.starts_at <= now_ms, NotifierSilence.ends_at > now_ms
        )
    )
    return [
        MuteWindow(f"api/{s.id}", dict(s.matchers), s.starts_at, s.ends_at) for s in rows.scalars()
    ]


async def refresh_pending_gauge(
    sessions: async_sessionmaker[AsyncSession],
    metrics: NotifierMetrics,
    stop: asyncio.Event,
    interval_ms: int,
) -> None:
    """Keep ``slawatch_outbox_pending`` current until ``stop``."""
    while not stop.is_set():
        try:
            async with sessions() as session:
                metrics.outbox_pending.set(await outbox.count_open(session))
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cannot count the outbox: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_ms / 1000)
