"""Admission control for the HTTP path: bounded in-flight events and fail-fast.

Two rules keep memory bounded when the broker is slow or down:

* at most ``max_inflight`` events are waiting for broker acknowledgements at any
  time (counted from produce until each send finished, even past a request's own
  timeout); a request that would go past it is answered 503 with ``Retry-After``
  at once (a request alone is always admitted when nothing is in flight);
* after a request in which *no* event was acknowledged, the intake is *open* for
  ``cooldown_ms``: requests are answered 503 at once instead of each waiting for
  the broker's timeout. After the cooldown the next request tries the broker again
  (half-open); one acknowledgement closes it. So recovery needs no restart.

``ready()`` is false while saturated or open, which turns ``/readyz`` false and
takes the instance out of a load balancer until it recovers.

A graceful stop (:class:`Drain`) is the third rule: once draining, every new request
is answered 503 with ``Retry-After`` (another instance, or this one restarted, takes
it), while the requests already admitted finish and get their acknowledgements.
"""

from __future__ import annotations

import asyncio
import contextlib
import math
from collections.abc import Iterator

from shared.timeutil import Clock


class Backpressure:
    """Counters and the open/closed state; single event loop, no locking needed."""

    def __init__(self, max_inflight: int, cooldown_ms: int, clock: Clock) -> None:
        self.max_inflight = max_inflight
        self.cooldown_ms = cooldown_ms
        self._clock = clock
        self.inflight = 0
        self._open_until = 0

    @property
    def retry_after_s(self) -> int:
        """What to put in ``Retry-After``: whole seconds, at least 1."""
        return max(1, math.ceil(self.cooldown_ms / 1000))

    def is_open(self) -> bool:
        return self._clock() < self._open_until

    def saturated(self) -> bool:
        return self.inflight >= self.max_inflight

    def admit(self, n: int) -> bool:
        """Reserve ``n`` in-flight slots; False (nothing reserved) when refused."""
        if self.is_open():
            return False
        if self.inflight and self.inflight + n > self.max_inflight:
            return False
        self.inflight += n
        return True

    def release(self, n: int) -> None:
        self.inflight = max(0, self.inflight - n)

    def failed(self) -> None:
        """Nothing of a request was acknowledged: open for the cooldown."""
        self._open_until = self._clock() + self.cooldown_ms

    def succeeded(self) -> None:
        self._open_until = 0

    async def ready(self) -> bool:
        return not self.is_open() and not self.saturated()


class Drain:
    """Graceful stop of the HTTP intake: :meth:`start` refuses new requests; the ones
    inside :meth:`request` finish, and :meth:`idle` returns when the last one did."""

    def __init__(self) -> None:
        self.draining = False
        self.active = 0
        self._idle = asyncio.Event()
        self._idle.set()

    def start(self) -> None:
        self.draining = True

    @contextlib.contextmanager
    def request(self) -> Iterator[None]:
        """Counts an admitted request while it runs."""
        self.active += 1
        self._idle.clear()
        try:
            yield
        finally:
            self.active -= 1
            if not self.active:
                self._idle.set()

    async def idle(self) -> None:
        await self._idle.wait()

    async def ready(self) -> bool:
        return not self.draining
