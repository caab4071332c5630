"""When ``slawatch up`` restarts a child that exited: the pure decision, clock injected.

A child that exits is started again after a delay that doubles with every exit in a
row (0.5 s, 1 s, 2 s, … capped at 30 s), so a child that cannot start (a port in use,
PostgreSQL down) does not spin, while a single crash costs half a second. A child
that stayed up for ``stable_ms`` since its last start had no trouble starting: its
next exit counts as the first of a new streak again.

Timeline (defaults)::

    start ─ up 2 s ─ exit ─ 0.5 s ─ start ─ up 1 s ─ exit ─ 1 s ─ start ─ up 60 s ─ exit ─ 0.5 s
                     streak 1                       streak 2                  streak 1 again

The shell that watches processes and spawns them is :mod:`services.stack`.
"""

from __future__ import annotations

from dataclasses import dataclass

from shared.timeutil import Clock


@dataclass(frozen=True)
class RestartPolicy:
    """Exponential backoff between restarts, reset once a child stayed up long enough."""

    initial_ms: int = 500
    factor: int = 2
    max_ms: int = 30_000
    stable_ms: int = 60_000

    def delay_ms(self, streak: int) -> int:
        """The wait before the restart that follows the ``streak``-th exit in a row (1-based)."""
        if streak < 1:
            raise ValueError("streak counts exits, from 1")
        # Capped before it can grow large: no overflow, no float rounding.
        delay = self.initial_ms
        for _ in range(streak - 1):
            delay *= self.factor
            if delay >= self.max_ms:
                return self.max_ms
        return min(delay, self.max_ms)


@dataclass(frozen=True)
class Restart:
    """What to do about one exit: wait ``delay_ms``; ``count`` restarts so far, this one
    included."""

    delay_ms: int
    count: int
    streak: int


class RestartTracker:
    """One child's restart history: call :meth:`started` at every start and
    :meth:`exited` at every exit."""

    def __init__(self, policy: RestartPolicy, clock: Clock) -> None:
        self._policy = policy
        self._clock = clock
        self._started_at = clock()
        self._streak = 0
        self.count = 0

    def started(self) -> None:
        self._started_at = self._clock()

    def exited(self) -> Restart:
        uptime = self._clock() - self._started_at
        self._streak = 1 if uptime >= self._policy.stable_ms else self._streak + 1
        self.count += 1
        return Restart(self._policy.delay_ms(self._streak), self.count, self._streak)
