"""Delivery workers: claim due outbox rows, deliver each through its channel, record.

One loop per worker: claim a small batch (committed at once), deliver the batch
concurrently outside any lock, then for each row record the attempt and its next
state in one transaction (:func:`services.notifier.outbox.finish`). When nothing is
due the worker waits for the poll interval or the :class:`Doorbell`, rung by intake
when it inserts rows in this process and by ``main`` on stop.

Stages for one row, in order (later issues add silence, grouping, circuit breaker
as further stages here): resolve receiver → resolve channel → deliver with a total
deadline → decide → record.

Delivery is at least once: a worker that dies (or loses its database) between the
receiver's answer and the recorded outcome leaves the row ``delivering``; after the
lease it is claimed and sent again with the same ``Idempotency-Key``. Database errors
are not retried here: they fail the worker, and with it the service, loudly.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from dataclasses import dataclass

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier import outbox
from services.notifier.backoff import Backoff, Random
from services.notifier.catalog import CatalogCache
from services.notifier.channels.base import Channel, DeliveryError, DeliveryResult, Reason
from services.notifier.metrics import NotifierMetrics
from services.notifier.outbox import Claimed
from shared.settings import Settings
from shared.timeutil import Clock

log = logging.getLogger(__name__)

BATCH_SIZE = 10
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
    batch_size: int = BATCH_SIZE

    @classmethod
    def from_settings(cls, settings: Settings) -> WorkerConfig:
        deadline = settings.delivery_timeout_ms + DEADLINE_MARGIN_MS
        return cls(
            max_attempts=settings.delivery_max_attempts,
            backoff=Backoff.from_settings(settings),
            deadline_ms=deadline,
            # Longer than any delivery may take, so no second replica claims a row in flight.
            lease_ms=deadline + LEASE_MARGIN_MS,
            poll_interval_ms=settings.delivery_poll_interval_ms,
        )


class DeliveryWorker:
    """One delivery loop; run several per process and several processes safely."""

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
        self._soonest_retry_ms: int | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Deliver until ``stop``; a batch in flight is finished first."""
        while not stop.is_set():
            ticket = self._doorbell.ticket()
            handled = await self.run_once()
            if handled < self._config.batch_size and not stop.is_set():
                wait_ms = self._config.poll_interval_ms
                if self._soonest_retry_ms is not None:
                    # A retry of ours is due before the next poll: wake for it.
                    wait_ms = min(wait_ms, max(0, self._soonest_retry_ms - self._clock()))
                    self._soonest_retry_ms = None
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(ticket.wait(), wait_ms / 1000)

    async def run_once(self) -> int:
        """Claim one batch and deliver it. Returns the number of rows handled."""
        async with self._sessions() as session, session.begin():
            claimed = await outbox.claim(
                session, self._clock(), self._config.lease_ms, self._config.batch_size
            )
        if claimed:
            # Everything from here to the end of an attempt fits in the lease.
            deadline = asyncio.get_running_loop().time() + self._config.deadline_ms / 1000
            await asyncio.gather(*(self._deliver(row, deadline) for row in claimed))
        return len(claimed)

    async def _deliver(self, row: Claimed, deadline: float) -> None:
        channel_name, result = await self._attempt(row, deadline)
        error = result if isinstance(result, DeliveryError) else None
        decision = outbox.decide(
            row.attempt, self._config.max_attempts, error, self._config.backoff, self._random
        )
        now = self._clock()
        async with self._sessions() as session, session.begin():
            kept = await outbox.finish(
                session,
                row,
                decision,
                now_ms=now,
                status_code=result.status_code,
                latency_ms=result.latency_ms,
                error=None if error is None else f"{error.reason.value}: {error}",
            )
        if decision.retry_in_ms is not None:
            due = now + decision.retry_in_ms
            self._soonest_retry_ms = min(due, self._soonest_retry_ms or due)
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

    async def _attempt(
        self, row: Claimed, deadline: float
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
                if breach is None:
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
                return label, await channel.deliver(breach, receiver)
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
