"""Reconnect, don't die: which failures are outages, and how loops wait them out.

A PostgreSQL restart or freeze, or a broker restart, is an *outage*: the service
waits with backoff, reports not-ready (``shared.readiness``), and resumes by itself.
Anything else (a bug, bad data) still fails the task loudly.

- :func:`is_transient` decides (pure): connection refused/reset/timeouts, asyncpg
  connection errors and SQLSTATE classes 08 / 57P / 53300, SQLAlchemy
  ``OperationalError`` / ``InterfaceError`` / ``DBAPIError`` with
  ``connection_invalidated`` or a transient cause, aiokafka's retriable errors.
- :func:`until_available` runs a start-up step until it succeeds (a service started
  before its database or broker waits instead of exiting).
- :func:`retrying` restarts a background loop that raised a transient error.

Both log one warning per outage (and one line when it is over), not one per attempt.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TypeVar

import asyncpg
from aiokafka.errors import KafkaError
from sqlalchemy import exc as sa_exc

from shared.errors import SlawatchError

log = logging.getLogger(__name__)

T = TypeVar("T")

#: SQLSTATEs of a server going away or not there yet: class 08 (connection
#: exception), 57P01-03 (admin/crash shutdown, cannot connect now), 53300 (too many
#: connections, e.g. while a restarted server fills up again).
_TRANSIENT_SQLSTATE_PREFIXES = ("08", "57P", "53300")


class Stopped(SlawatchError):
    """The service was told to stop while it waited for a dependency."""


def is_transient(error: BaseException) -> bool:
    """True when ``error`` (or what caused it) means "the dependency is away", not a bug."""
    seen: set[int] = set()
    todo: list[BaseException | None] = [error]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        if _transient_itself(current):
            return True
        todo.extend((current.__cause__, current.__context__, getattr(current, "orig", None)))
    return False


def _transient_itself(error: BaseException) -> bool:
    if isinstance(error, (OSError, TimeoutError, asyncpg.InterfaceError)):
        # OSError covers refused / reset / unreachable; TimeoutError is one in 3.11.
        # asyncpg.InterfaceError: "connection is closed", ConnectionDoesNotExistError.
        return True
    if isinstance(error, KafkaError):
        return bool(getattr(error, "retriable", False)) or type(error).__name__ in {
            "KafkaConnectionError",
            "KafkaTimeoutError",
            "NodeNotReadyError",
        }
    if isinstance(error, (sa_exc.OperationalError, sa_exc.InterfaceError, sa_exc.TimeoutError)):
        return True
    if isinstance(error, sa_exc.DBAPIError) and error.connection_invalidated:
        return True
    sqlstate = getattr(error, "sqlstate", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(_TRANSIENT_SQLSTATE_PREFIXES)


def describe(error: BaseException) -> str:
    """A one-line reason: the type and the message (no traceback)."""
    text = str(error).strip().splitlines()[0] if str(error).strip() else ""
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


@dataclass(frozen=True)
class Backoff:
    """Delays between attempts: ``base_s`` doubling up to ``max_s`` (pure)."""

    base_s: float = 0.2
    max_s: float = 5.0

    def delay(self, attempt: int) -> float:
        """Seconds to wait after the ``attempt``-th failure (1-based)."""
        return float(min(self.max_s, self.base_s * 2 ** max(0, attempt - 1)))


class Outage:
    """One warning when an outage starts, one info line when it ends."""

    def __init__(self, what: str, clock: Callable[[], float] = time.monotonic) -> None:
        self._what = what
        self._clock = clock
        self._since: float | None = None
        self.attempts = 0

    @property
    def ongoing(self) -> bool:
        return self._since is not None

    def failed(self, error: BaseException) -> None:
        self.attempts += 1
        if self._since is None:
            self._since = self._clock()
            log.warning("%s unavailable, waiting: %s", self._what, describe(error))
        else:
            log.debug("%s still unavailable (attempt %d): %s", self._what, self.attempts, error)

    def recovered(self) -> None:
        if self._since is not None:
            log.warning(
                "%s available again after %.1f s (%d attempts)",
                self._what,
                self._clock() - self._since,
                self.attempts,
            )
        self._since = None
        self.attempts = 0


async def pause(stop: asyncio.Event, seconds: float) -> bool:
    """Wait ``seconds`` or until ``stop``; True when stopped."""
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
    return stop.is_set()


async def until_available(
    what: str,
    attempt: Callable[[], Awaitable[T]],
    stop: asyncio.Event,
    *,
    backoff: Backoff = Backoff(),
) -> T:
    """``await attempt()`` until it succeeds; transient failures wait with backoff.

    Raises :class:`Stopped` when ``stop`` is set meanwhile; a non-transient failure is
    raised as it is."""
    outage = Outage(what)
    while True:
        if stop.is_set():
            raise Stopped(f"stopped while waiting for {what}")
        try:
            result = await attempt()
        except Exception as error:
            if not is_transient(error):
                raise
            outage.failed(error)
            if await pause(stop, backoff.delay(outage.attempts)):
                raise Stopped(f"stopped while waiting for {what}") from error
            continue
        outage.recovered()
        return result


async def retrying(
    what: str,
    loop: Callable[[], Awaitable[None]],
    stop: asyncio.Event,
    *,
    before_restart: Callable[[], Awaitable[None]] | None = None,
    transient: Callable[[BaseException], bool] = is_transient,
    backoff: Backoff = Backoff(),
    healthy_after_s: float = 30.0,
    clock: Callable[[], float] = time.monotonic,
) -> None:
    """Run ``loop()`` until it returns (it returns once ``stop`` is set).

    A transient failure restarts it after a backoff pause; ``before_restart`` runs
    first (e.g. rewind a consumer to its committed offsets), itself retried while the
    outage lasts; ``transient`` decides what is an outage. A loop that ran
    ``healthy_after_s`` before failing starts a new outage (a new warning, backoff
    from the start). Other failures are raised."""
    outage = Outage(what, clock)
    while True:
        started = clock()
        try:
            await loop()
            return
        except Exception as error:
            if not transient(error) or stop.is_set():
                raise
            if outage.ongoing and clock() - started >= healthy_after_s:
                outage.recovered()
            outage.failed(error)
        while True:
            if await pause(stop, backoff.delay(outage.attempts)):
                return
            if before_restart is None:
                break
            try:
                await before_restart()
                break
            except Exception as error:
                if not transient(error):
                    raise
                outage.failed(error)
        log.info("%s restarting", what)
