"""One stop sequence for every service: named steps in order, one grace budget.

A service builds a :class:`Shutdown` as it starts: each resource adds its *close* as
soon as it exists, and once the background tasks run, the *stop steps* that tell them
to finish. When the service is told to stop (or its start fails half-way), the
sequence runs::

    stop begins ─────────── grace_s ───────────┤
    stop steps, in the order added:            │ closes, last added first:
      signal "http intake"   (at once)         │   "background tasks"
      wait   "in-flight"     (≤ what is left)  │   "producer"  (≤ what is left, ≥ a floor)
      signal "http server"                     │   "database"  (to the end)
      tasks  "loops"         (≤ what is left,  │
               then the late ones cancelled,   │
               named in one warning)           │

- The stop steps share the one budget: a step waits at most what is left of it
  (at least :data:`MIN_WAIT_S`, so a step reached at the deadline still lets what is
  already finishing finish instead of cancelling it mid-commit). A ``wait`` past the
  budget is given up (logged) and the sequence goes on.
- Closes always run, whatever happened before: like ``contextlib.AsyncExitStack``, a
  start that fails half-way closes what it opened, last opened first. A close runs to
  its end unless it is given ``floor_s``: cutting short a consumer that leaves its
  group, or a pool that ends its connections, would cost more (a session timeout for
  the next owner, a leaked connection) than it saves; a producer flush is bounded.
- A step that raises is logged with its name and the next steps still run; the
  exceptions are kept in :attr:`Shutdown.errors`.
- Aborted (the service's task cancelled, or a ``BaseException`` such as
  ``KeyboardInterrupt``): no stop step is run or waited for; the tasks of the
  ``tasks`` steps are cancelled as in a crash (no drain, no checkpoint: the next owner
  replays from the last one), the closes still run, and the cancellation goes on.

Pure sequencing: every effect is a callable the service passes in; the clock
(integer ms, monotonic by default so a wall-clock jump cannot cut the grace) is
injected so tests decide when the budget is gone.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field
from enum import Enum
from types import TracebackType
from typing import Any, Protocol

from shared.timeutil import Clock

log = logging.getLogger(__name__)

#: The least a stop step waits, even when the budget is already gone.
MIN_WAIT_S = 0.1
#: How long a server told to stop is given to close its socket before it is cancelled.
SERVER_CLOSE_S = 2.0

#: An effect of a step: returns nothing, or an awaitable that the step awaits.
Action = Callable[[], Any]


def monotonic_ms() -> int:
    """A clock that never jumps (the default of :class:`Shutdown`)."""
    return time.monotonic_ns() // 1_000_000


class StepKind(Enum):
    """What a stop step does with the budget."""

    SIGNAL = "signal"  # called at once: tells something to stop
    WAIT = "wait"  # awaited within what is left; given up past it
    TASKS = "tasks"  # waited for within what is left; the late ones cancelled


@dataclass(frozen=True)
class _Step:
    name: str
    kind: StepKind
    action: Action | None = None
    tasks: tuple[asyncio.Task[Any], ...] = ()


@dataclass(frozen=True)
class _Close:
    name: str
    action: Action
    floor_s: float | None


@dataclass
class Outcome:
    """What one run of the sequence did, for the service's log and for tests."""

    #: names of the tasks cancelled because they outlasted the grace (or the abort)
    cancelled: list[str] = field(default_factory=list)
    #: names of the steps (waits, bounded closes) given up at the deadline
    given_up: list[str] = field(default_factory=list)
    aborted: bool = False


class _Stoppable(Protocol):
    def stop(self) -> None: ...


class Shutdown:
    """The ordered stop of one service: stop steps, then closes, under ``grace_s``.

    Use as ``async with Shutdown("ingest", grace_s) as shutdown:`` around the service's
    body; leaving the block runs the sequence (aborted if the block was cancelled),
    then lets the block's exception, if any, go on.
    """

    def __init__(self, service: str, grace_s: float, *, clock: Clock = monotonic_ms) -> None:
        self.service = service
        self.grace_ms = int(grace_s * 1000)
        self._clock = clock
        self._steps: list[_Step] = []
        self._closes: list[_Close] = []
        self._deadline_ms = 0
        #: ``(step name, exception)`` of every step that raised, in order
        self.errors: list[tuple[str, BaseException]] = []
        self.outcome = Outcome()
        self._ran = False

    # -- building ----------------------------------------------------------------

    def signal(self, name: str, action: Callable[[], object]) -> None:
        """A stop step called at once (set an event, tell a server to exit)."""
        self._steps.append(_Step(name, StepKind.SIGNAL, action))

    def wait(self, name: str, action: Callable[[], Awaitable[object]]) -> None:
        """A stop step awaited within what is left of the grace, given up past it."""
        self._steps.append(_Step(name, StepKind.WAIT, action))

    def tasks(self, name: str, tasks: Iterable[asyncio.Task[Any]]) -> None:
        """A stop step that waits for ``tasks`` to end by themselves within what is left
        of the grace; those still running then are cancelled and named in one warning."""
        self._steps.append(_Step(name, StepKind.TASKS, tasks=tuple(tasks)))

    def close(self, name: str, action: Action, *, floor_s: float | None = None) -> None:
        """A close, run after the stop steps, last added first, always. With ``floor_s``
        it is bounded by what is left of the grace, but given at least ``floor_s``."""
        self._closes.append(_Close(name, action, floor_s))

    def close_server(
        self,
        name: str,
        server: _Stoppable,
        task: asyncio.Task[Any],
        *,
        within_s: float = SERVER_CLOSE_S,
    ) -> None:
        """A close that tells ``server`` to stop and gives its serving ``task`` up to
        ``within_s`` to end, also after an abort: a server cancelled mid-serve (uvicorn)
        never closes its listening socket."""

        async def close() -> None:
            server.stop()
            _, late = await asyncio.wait([task], timeout=within_s)
            if late:
                log.warning(
                    "%s: %s did not close within %.1f s; cancelling it",
                    self.service,
                    name,
                    within_s,
                    extra={"service": self.service, "step": name},
                )
                await _cancel(late)
                self.outcome.cancelled.append(task.get_name())

        self.close(name, close)

    # -- running -----------------------------------------------------------------

    async def __aenter__(self) -> Shutdown:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        # An Exception (a failed start, ``Stopped``) still stops gracefully what was
        # started; a cancellation or an interrupt is a crash: no drain.
        aborted = exc is not None and not isinstance(exc, Exception)
        await self.run(abort=aborted)

    async def run(self, *, abort: bool = False) -> Outcome:
        """Run the sequence once (later calls return the first outcome). A cancellation
        that arrives while it runs aborts what is left of the stop steps, runs the
        closes, then is raised again."""
        if self._ran:
            return self.outcome
        self._ran = True
        self._deadline_ms = self._clock() + self.grace_ms
        self.outcome.aborted = abort
        cancelled = False
        log.info(
            "%s stopping%s",
            self.service,
            " (aborted)" if abort else "",
            extra={"service": self.service, "grace_s": self.grace_ms / 1000},
        )
        if not abort:
            try:
                for step in self._steps:
                    await self._stop_step(step)
            except asyncio.CancelledError:
                cancelled = True
                self.outcome.aborted = True
        if self.outcome.aborted:
            await self._cancel_step_tasks()
        for close in reversed(self._closes):
            try:
                await self._close(close)
            except asyncio.CancelledError:
                # cancelled again while closing: the later closes still run
                cancelled = True
        if cancelled:
            raise asyncio.CancelledError
        return self.outcome

    def raise_error(self) -> None:
        """Raise the first exception a step raised (after the service's own failure,
        which comes first): a close that failed is not a clean stop."""
        if self.errors:
            raise self.errors[0][1]

    def remaining_s(self) -> float:
        """What is left of the grace, in seconds (negative past the deadline)."""
        return (self._deadline_ms - self._clock()) / 1000

    async def _stop_step(self, step: _Step) -> None:
        try:
            if step.kind is StepKind.SIGNAL:
                assert step.action is not None
                result = step.action()
                if inspect.isawaitable(result):
                    await result
            elif step.kind is StepKind.WAIT:
                assert step.action is not None
                await self._bounded(step.name, step.action, MIN_WAIT_S)
            else:
                await self._wait_tasks(step)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - one failed step must not skip the rest
            self._failed(step.name, error)

    async def _wait_tasks(self, step: _Step) -> None:
        if not step.tasks:
            return
        _, late = await asyncio.wait(step.tasks, timeout=max(self.remaining_s(), MIN_WAIT_S))
        if not late:
            return
        names = sorted(task.get_name() for task in late)
        log.warning(
            "%s: shutdown grace exceeded; cancelling %s",
            self.service,
            ", ".join(names),
            extra={"service": self.service, "step": step.name, "tasks": names},
        )
        self.outcome.cancelled.extend(names)
        await _cancel(late)

    async def _cancel_step_tasks(self) -> None:
        running = {t for step in self._steps for t in step.tasks if not t.done()}
        if running:
            self.outcome.cancelled.extend(sorted(t.get_name() for t in running))
            await _cancel(running)

    async def _close(self, close: _Close) -> None:
        try:
            if close.floor_s is None:
                result = close.action()
                if inspect.isawaitable(result):
                    await result
            else:
                await self._bounded(close.name, close.action, close.floor_s)
        except asyncio.CancelledError:
            raise
        except Exception as error:  # noqa: BLE001 - the later closes must still run
            self._failed(close.name, error)

    async def _bounded(self, name: str, action: Action, floor_s: float) -> None:
        result = action()
        if not inspect.isawaitable(result):
            return
        budget = max(self.remaining_s(), floor_s)
        try:
            await asyncio.wait_for(result, budget)
        except TimeoutError:
            log.warning(
                "%s: shutdown grace exceeded during %s; going on",
                self.service,
                name,
                extra={"service": self.service, "step": name, "waited_s": round(budget, 3)},
            )
            self.outcome.given_up.append(name)

    def _failed(self, name: str, error: Exception) -> None:
        log.error(
            "%s: shutdown step %s failed",
            self.service,
            name,
            exc_info=error,
            extra={"service": self.service, "step": name},
        )
        self.errors.append((name, error))


async def _cancel(tasks: Iterable[asyncio.Task[Any]]) -> None:
    """Cancel ``tasks`` and wait until they have ended (their errors are their owner's:
    the supervisor's done callback reports them)."""
    pending = list(tasks)
    for task in pending:
        task.cancel()
    await asyncio.gather(*pending, return_exceptions=True)


async def first_set(*events: asyncio.Event) -> None:
    """Return once any of ``events`` is set: the stop request of ``main`` or of the
    service's own supervisor, whichever comes first."""
    waiters = [asyncio.create_task(event.wait()) for event in events]
    try:
        await asyncio.wait(waiters, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for waiter in waiters:
            waiter.cancel()
        await asyncio.gather(*waiters, return_exceptions=True)
