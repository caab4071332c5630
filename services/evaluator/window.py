"""A sliding event-time window: a ring of time buckets with running sums.

The window keeps ``size`` buckets of ``bucket_ms`` each. ``head`` is the bucket of the
newest time the window has been advanced to (``t // bucket_ms``)::

    event time ──────────────────────────────────────────────────────────────▶
               ┌────────┬────────┬─────┬────────┬────────┐
               │ head-n+1│  ...  │     │ head-1 │  head  │ ← t lies in head
               └────────┴────────┴─────┴────────┴────────┘
               ◀──────────────── size = n buckets ───────▶
    advance(t') with t' two buckets later:  the two oldest buckets expire whole;
    their counts leave the running sums; their slots are reused for the new ones.

At time ``t`` the window counts exactly the events whose bucket ``e // bucket_ms``
lies in ``(t // bucket_ms - n, t // bucket_ms]``: the current, partly filled bucket
and the ``n - 1`` before it. So the span covered is between ``(n-1)·w`` and ``n·w``
(``w`` = bucket width); with ``n·w == window_ms`` that is "the last window, at bucket
granularity". Events older than the window are refused by :meth:`add`.

Sizing (:func:`bucket_width_ms`): ``w = max(min(1 s, window), ceil(window / 600))``,
``n = ceil(window / w)``: never more than 600 buckets, never narrower than 1 s (a
window under 1 s is a single bucket). Examples: 5m → 300 buckets of 1 s; 1h → 600 of 6 s;
30d → 600 of 72 min.

Coarser rings (burn-rate and budget windows) pass a smaller ``max_buckets``: a 30d
window in 30 buckets of a day.

Memory per window: two ``array('I')`` of ``n`` slots, 8·n bytes (≤ 4.8 KiB) plus
about 230 bytes of object overhead (:meth:`SlidingWindow.nbytes`). A bucket counts at
most 2**32 - 1 events. Every operation is O(1) except advancing, which
is O(min(buckets crossed, n)), i.e. O(1) amortized per bucket of elapsed time.
"""

from __future__ import annotations

import sys
from array import array
from functools import lru_cache
from itertools import compress
from typing import Any

MAX_BUCKETS = 600
MIN_BUCKET_MS = 1_000


@lru_cache(maxsize=256)
def bucket_width_ms(window_ms: int, max_buckets: int = MAX_BUCKETS) -> int:
    """The bucket width for a window length (see the module docstring)."""
    if window_ms <= 0:
        raise ValueError("window must be positive")
    return max(min(MIN_BUCKET_MS, window_ms), -(-window_ms // max_buckets))


class SlidingWindow:
    """Good and valid counts over a sliding event-time window (see the module docstring)."""

    __slots__ = ("_good", "_valid", "bucket_ms", "good", "head", "size", "valid", "window_ms")

    def __init__(
        self, window_ms: int, bucket_ms: int | None = None, *, max_buckets: int = MAX_BUCKETS
    ) -> None:
        self.window_ms = window_ms
        self.bucket_ms = (
            bucket_ms if bucket_ms is not None else bucket_width_ms(window_ms, max_buckets)
        )
        if self.bucket_ms <= 0:
            raise ValueError("bucket width must be positive")
        self.size = -(-window_ms // self.bucket_ms)
        self._good = array("I", bytes(4 * self.size))
        self._valid = array("I", bytes(4 * self.size))
        self.head: int | None = None
        self.good = 0
        self.valid = 0

    @property
    def sli(self) -> float | None:
        """good / valid, or ``None`` while the window holds no valid event."""
        return self.good / self.valid if self.valid else None

    def advance(self, time_ms: int) -> None:
        """Move the window's present to ``time_ms``; earlier times are a no-op."""
        target = time_ms // self.bucket_ms
        if self.head is None:
            self.head = target
            return
        steps = target - self.head
        if steps <= 0:
            return
        if steps >= self.size or self.valid == 0:
            if self.valid:
                self._clear()
        else:
            for index in range(self.head + 1, target + 1):
                slot = index % self.size
                self.good -= self._good[slot]
                self.valid -= self._valid[slot]
                self._good[slot] = 0
                self._valid[slot] = 0
        self.head = target

    def add(self, time_ms: int, good: bool) -> bool:
        """Count one valid event at ``time_ms`` (advancing first if it is newer).

        Returns ``False``, counting nothing, when the event is older than the window.
        """
        index = time_ms // self.bucket_ms
        head = self.head
        if head is None or index > head:
            self.advance(time_ms)  # the caller has usually advanced already
            head = self.head
            assert head is not None
        size = self.size
        if index <= head - size:
            return False
        slot = index % size
        self._valid[slot] += 1
        self.valid += 1
        if good:
            self._good[slot] += 1
            self.good += 1
        return True

    def next_expiry_ms(self) -> int | None:
        """The next instant at which a bucket leaves the window, while any event is held.

        ``None`` when the window is empty: time passing changes nothing then.
        """
        if self.head is None or self.valid == 0:
            return None
        return (self.head + 1) * self.bucket_ms

    def nbytes(self) -> int:
        """Memory held by this window (object, slots and both arrays)."""
        return sys.getsizeof(self) + sys.getsizeof(self._good) + sys.getsizeof(self._valid)

    def _clear(self) -> None:
        for slot in range(self.size):
            self._good[slot] = 0
            self._valid[slot] = 0
        self.good = 0
        self.valid = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for orjson: only non-empty buckets, by absolute bucket index."""
        buckets: list[list[int]] = []
        head = self.head
        if head is not None and self.valid:
            # Every checkpoint dumps every group: compress() finds the occupied slots
            # in C, so a sparse ring costs its occupied buckets, not all of them.
            size, good, valid = self.size, self._good, self._valid
            for slot in compress(range(size), valid):
                index = head - (head - slot) % size
                buckets.append([index, good[slot], valid[slot]])
            buckets.sort()
        return {"w": self.bucket_ms, "n": self.size, "head": self.head, "b": buckets}

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], window_ms: int, *, max_buckets: int = MAX_BUCKETS
    ) -> SlidingWindow:
        """Rebuild a window; raises ``ValueError`` when its shape does not fit ``window_ms``."""
        window = cls(window_ms, max_buckets=max_buckets)
        if data["w"] != window.bucket_ms or data["n"] != window.size:
            raise ValueError("window shape changed")
        head = data["head"]
        window.head = None if head is None else int(head)
        for index, good, valid in data["b"]:
            if window.head is None or not window.head - window.size < index <= window.head:
                raise ValueError("bucket outside the window")
            if not 0 <= good <= valid:
                raise ValueError("bucket counts out of range")
            slot = int(index) % window.size
            window._good[slot] = int(good)
            window._valid[slot] = int(valid)
            window.good += int(good)
            window.valid += int(valid)
        return window
