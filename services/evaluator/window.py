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

Deciding to the millisecond (:meth:`SlidingWindow.decision`): the ring keeps one
slot more than ``n``, the *tail*: the bucket that just left the counted window. A
condition is decided on the exact window ``(t - window_ms, t]``: the buckets wholly
inside it, plus the share of the one bucket its trailing edge cuts that lies inside,
the events of that bucket assumed spread evenly over it::

    trailing edge t - window_ms
                 ▼
      ┌──────────┬────────┬─────┬────────┐
      │ tail  ░░░│        │ ... │  head  │   decided: full buckets + ░ share of the cut one
      └──────────┴────────┴─────┴────────┘

For steady traffic this is the exact count to within one event; for any traffic the
decided counts are a weighted mean of those of two exact windows ending at ``t``, one
shorter than ``window_ms`` by less than a bucket and one longer by less than a bucket
(so the decided ratio lies between theirs). The counts reported (:attr:`good`,
:attr:`valid`) stay the exact integers of the bucket window described above.

Memory per window: two ``array('I')`` of ``n + 1`` slots, 8·(n+1) bytes (≤ 4.8 KiB)
plus about 230 bytes of object overhead (:meth:`SlidingWindow.nbytes`). A bucket counts
at most 2**32 - 1 events. Every operation is O(1) except advancing, which is
O(min(buckets crossed, n)), i.e. O(1) amortized per bucket of elapsed time.
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

    __slots__ = (
        "_good",
        "_slots",
        "_valid",
        "bucket_ms",
        "good",
        "head",
        "size",
        "valid",
        "window_ms",
    )

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
        #: Ring length: the ``size`` counted buckets and the tail (see :meth:`decision`).
        self._slots = self.size + 1
        self._good = array("I", bytes(4 * self._slots))
        self._valid = array("I", bytes(4 * self._slots))
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
        head = self.head
        if head is None:
            self.head = target
            return
        steps = target - head
        if steps <= 0:
            return
        slots, size = self._slots, self.size
        if steps >= slots:
            self._clear()
        elif self.valid == 0:
            # Nothing counted: only the old tail can hold events, and it leaves now.
            tail = (head - size) % slots
            self._good[tail] = 0
            self._valid[tail] = 0
        else:
            good, valid = self._good, self._valid
            for index in range(head + 1, target + 1):
                # The bucket ``size`` back leaves the counted window and becomes the
                # tail; the slot of the new bucket held the previous tail.
                leaving = (index - size) % slots
                self.good -= good[leaving]
                self.valid -= valid[leaving]
                slot = index % slots
                good[slot] = 0
                valid[slot] = 0
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
        if index <= head - self.size:
            return False
        slot = index % self._slots
        self._valid[slot] += 1
        self.valid += 1
        if good:
            self._good[slot] += 1
            self.good += 1
        return True

    def decision(self, time_ms: int) -> tuple[float, float]:
        """Good and valid of the exact window ``(time_ms - window_ms, time_ms]``, the
        bucket its trailing edge cuts taken pro rata (see the module docstring).

        ``time_ms`` is the present (the window advanced to it); for another time the
        counted buckets are returned as they are.
        """
        head = self.head
        width = self.bucket_ms
        if head is None or time_ms // width != head:
            return self.good, self.valid
        edge = time_ms - self.window_ms + 1  # the oldest millisecond inside
        cut = edge // width
        share = ((cut + 1) * width - edge) / width  # of bucket ``cut`` inside the window
        slot = cut % self._slots
        if cut == head - self.size:  # the tail: add its share
            return (
                self.good + share * self._good[slot],
                self.valid + share * self._valid[slot],
            )
        # The oldest counted bucket (a window that is not a whole number of buckets):
        # take away the share outside.
        outside = 1.0 - share
        return self.good - outside * self._good[slot], self.valid - outside * self._valid[slot]

    def next_expiry_ms(self) -> int | None:
        """The next bucket boundary, while any event is held (counted or in the tail).

        ``None`` when the window is empty: time passing changes nothing then.
        """
        head = self.head
        if head is None:
            return None
        if self.valid == 0 and self._valid[(head - self.size) % self._slots] == 0:
            return None
        return (head + 1) * self.bucket_ms

    def nbytes(self) -> int:
        """Memory held by this window (object, slots and both arrays)."""
        return sys.getsizeof(self) + sys.getsizeof(self._good) + sys.getsizeof(self._valid)

    def _clear(self) -> None:
        for slot in range(self._slots):
            self._good[slot] = 0
            self._valid[slot] = 0
        self.good = 0
        self.valid = 0

    def to_dict(self) -> dict[str, Any]:
        """Plain data for orjson: only non-empty buckets, by absolute bucket index."""
        buckets: list[list[int]] = []
        head = self.head
        if head is not None:
            # Every checkpoint dumps every group: compress() finds the occupied slots
            # in C, so a sparse ring costs its occupied buckets, not all of them. The
            # tail (index head - n) is in the list too.
            slots, good, valid = self._slots, self._good, self._valid
            for slot in compress(range(slots), valid):
                index = head - (head - slot) % slots
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
            # ``head - n`` is the tail: kept for decisions, not counted.
            if window.head is None or not window.head - window.size <= index <= window.head:
                raise ValueError("bucket outside the window")
            if not 0 <= good <= valid:
                raise ValueError("bucket counts out of range")
            slot = int(index) % window._slots
            window._good[slot] = int(good)
            window._valid[slot] = int(valid)
            if index > window.head - window.size:
                window.good += int(good)
                window.valid += int(valid)
        return window
