"""Deduplication of retried HTTP batches by event id, within a short horizon.

A client that timed out and sends the same batch again must not double-count: ids
acknowledged by the broker in the last ``horizon_ms`` are remembered (at most
``capacity`` of them, oldest forgotten first) and a repeated one is answered
``accepted`` with ``"duplicate": true`` without being produced again.

Bounded and per process: after a restart, on another replica, or past the horizon a
repeat is produced again; the evaluator deduplicates by id as well, so this is an
optimisation for the common case, not the guarantee. Memory: about 150 bytes per
remembered id (100 000 ids ≈ 15 MB).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable

from shared.timeutil import Clock


class RecentIds:
    """An insertion-ordered map id → time acknowledged, bounded by size and age."""

    def __init__(self, capacity: int, horizon_ms: int, clock: Clock) -> None:
        self.capacity = capacity
        self.horizon_ms = horizon_ms
        self._clock = clock
        self._seen: OrderedDict[str, int] = OrderedDict()

    def __len__(self) -> int:
        return len(self._seen)

    def _expire(self, now: int) -> None:
        cutoff = now - self.horizon_ms
        while self._seen:
            oldest_id, at = next(iter(self._seen.items()))
            if at > cutoff:
                break
            del self._seen[oldest_id]

    def seen(self, event_id: str) -> bool:
        self._expire(self._clock())
        return event_id in self._seen

    def seen_of(self, event_ids: Iterable[str]) -> set[str]:
        """Those of ``event_ids`` acknowledged within the horizon (one expiry pass)."""
        self._expire(self._clock())
        return {event_id for event_id in event_ids if event_id in self._seen}

    def add(self, event_ids: Iterable[str]) -> None:
        now = self._clock()
        self._expire(now)
        for event_id in event_ids:
            self._seen[event_id] = now
            self._seen.move_to_end(event_id)
        while len(self._seen) > self.capacity:
            self._seen.popitem(last=False)
