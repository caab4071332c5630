"""A mergeable quantile sketch with 1 % relative accuracy (DDSketch-style log buckets).

A value ``v`` with ``|v| ≥ MIN_VALUE`` falls in the bin ``i = ceil(log_gamma |v|)``
with ``gamma = (1 + alpha) / (1 - alpha)``, ``alpha = 0.01``; the bin stands for
``2 gamma^i / (gamma + 1)``, which lies within ``alpha`` of every value in
``(gamma^(i-1), gamma^i]``. Smaller magnitudes count as 0.
Bins of positive values, of zero and of negative values share one integer key space
ordered like the values::

    key(v) = OFFSET + i     for v ≥ MIN_VALUE
             0              for |v| < MIN_VALUE
           -(OFFSET + i)    for v ≤ -MIN_VALUE      (i of |v|)

A sketch is a ``dict[key, count]``; merging is adding counts, so a sliding window
keeps one sketch per bucket and merges them when a quantile is asked for
(:class:`QuantileWindow`). Values from 1 ms to a week need about 1,200 bins; a typical
latency distribution occupies a few hundred.

The ``q``-quantile is the value of rank ``max(1, ceil(q·n))`` in ascending order; the
sketch answers it with relative error ≤ alpha.
"""

from __future__ import annotations

import math
import sys
from array import array
from collections.abc import Iterator
from itertools import compress
from typing import Any

from services.evaluator.window import bucket_width_ms

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
MIN_VALUE = 1e-9
OFFSET = 1 << 20
#: Buckets of a quantile window. Each bucket keeps its own sketch (:class:`DenseBins`,
#: 4 bytes per bin of the occupied range): with a typical latency spread of ~250
#: bins, about 13 KiB per (objective, group). Twelve buckets make a window cover
#: between 11/12 and all of its length.
BUCKETS = 12


def key_of(value: float) -> int:
    """The bin key of ``value``."""
    magnitude = abs(value)
    if magnitude < MIN_VALUE:
        return 0
    index = math.ceil(math.log(magnitude) / _LOG_GAMMA)
    return OFFSET + index if value > 0 else -(OFFSET + index)


#: Memo of :func:`key_of` for the values met lately: measured values repeat (integer
#: milliseconds, mostly), and a dict lookup costs a fraction of ``math.log``. Exact,
#: unlike a cheaper formula, which could move a value on a bin edge. Bounded: cleared
#: when full.
_KEYS: dict[float, int] = {}
_KEYS_MAX = 65_536


def value_of(key: int) -> float:
    """The value a bin stands for."""
    if key == 0:
        return 0.0
    index = abs(key) - OFFSET
    estimate = 2 * GAMMA**index / (GAMMA + 1)
    return estimate if key > 0 else -estimate


def rank(q: float, n: int) -> int:
    """The 1-based rank of the ``q``-quantile among ``n`` values."""
    return max(1, math.ceil(q * n))


def quantile(bins: dict[int, int], q: float, n: int) -> float | None:
    """The ``q``-quantile of a sketch holding ``n`` values (``None`` when empty)."""
    if n <= 0:
        return None
    wanted = rank(q, n)
    seen = 0
    for key in sorted(bins):
        seen += bins[key]
        if seen >= wanted:
            return value_of(key)
    return value_of(max(bins))


class DenseBins:
    """One bucket's sketch: bins of positive values as a dense ``array('I')`` from key
    ``lo`` (4 bytes per bin in the occupied range, grown on demand), the rare zero and
    negative bins in a dict. About 1 KiB for a typical latency spread, against ~9 KiB
    for a dict of the same bins. ``hi`` is one past the last dense key; ``good`` and
    ``valid`` are the bucket's counts for its window (see :class:`QuantileWindow`)."""

    __slots__ = ("counts", "good", "hi", "lo", "other", "valid")

    def __init__(self) -> None:
        self.lo = 0
        self.hi = 0
        self.counts = array("I")
        self.other: dict[int, int] | None = None
        self.good = 0
        self.valid = 0

    def add(self, key: int, count: int = 1) -> None:
        if key <= 0:
            other = self.other
            if other is None:
                other = self.other = {}
            other[key] = other.get(key, 0) + count
            return
        counts = self.counts
        if not counts:
            self.lo, self.hi = key, key + 1
            counts.append(count)
            return
        index = key - self.lo
        if index < 0:
            self.counts = counts = array("I", bytes(4 * -index)) + counts
            self.lo = key
            index = 0
        elif index >= len(counts):
            counts.frombytes(bytes(4 * (index - len(counts) + 1)))
            self.hi = key + 1
        counts[index] += count

    def items(self) -> Iterator[tuple[int, int]]:
        lo, counts = self.lo, self.counts
        for key in compress(range(lo, lo + len(counts)), counts):
            yield key, counts[key - lo]
        if self.other:
            yield from self.other.items()

    def nbytes(self) -> int:
        other = sys.getsizeof(self.other) if self.other is not None else 0
        return sys.getsizeof(self) + sys.getsizeof(self.counts) + other


class QuantileWindow:
    """Values over a sliding event-time window: a ring of per-bucket sketches (same
    bucketing as :class:`~services.evaluator.window.SlidingWindow`).

    For a threshold decision it also counts, per bucket, the values whose bin stands
    for at most ``threshold`` (``good``) next to all values (``valid``), so "the
    quantile is above the threshold" is ``good < ceil(q·valid)``, i.e.
    ``good / valid < q``: O(1), no sort. The quantile itself is computed only when a
    breach is published, by merging the buckets' sketches (:attr:`bins`): no running
    sketch is kept, so adding a value touches one bucket and expiring a bucket is O(1).
    """

    __slots__ = (
        "_bins",
        "bucket_ms",
        "good",
        "head",
        "limit_key",
        "size",
        "threshold",
        "valid",
        "window_ms",
    )

    def __init__(self, window_ms: int, threshold: float, max_buckets: int = BUCKETS) -> None:
        self.window_ms = window_ms
        self.threshold = threshold
        self.bucket_ms = bucket_width_ms(window_ms, max_buckets)
        self.size = -(-window_ms // self.bucket_ms)
        self.limit_key = key_of(threshold)
        if value_of(self.limit_key) > threshold:
            self.limit_key -= 1  # the bin holding the threshold stands for more than it
        #: Per bucket its sketch and counts (``None``: no value in it).
        self._bins: list[DenseBins | None] = [None] * self.size
        self.head: int | None = None
        self.good = 0
        self.valid = 0

    @property
    def sli(self) -> float | None:
        """Share of values within the threshold."""
        return self.good / self.valid if self.valid else None

    @property
    def bins(self) -> dict[int, int]:
        """The window's sketch: every bucket's bins merged."""
        merged: dict[int, int] = {}
        for bins in self._bins:
            if bins is not None:
                for key, count in bins.items():
                    merged[key] = merged.get(key, 0) + count
        return merged

    def quantile(self, q: float) -> float | None:
        return quantile(self.bins, q, self.valid)

    def advance(self, time_ms: int) -> None:
        target = time_ms // self.bucket_ms
        if self.head is None:
            self.head = target
            return
        if target <= self.head:
            return
        if self.valid:
            first = max(self.head + 1, target - self.size + 1)
            for index in range(first, target + 1):
                self._expire(index % self.size)
        self.head = target

    def _expire(self, slot: int) -> None:
        bins = self._bins[slot]
        if bins is None:
            return
        self.good -= bins.good
        self.valid -= bins.valid
        self._bins[slot] = None

    def add(self, time_ms: int, value: float) -> bool:
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
        key = _KEYS.get(value)
        if key is None:
            key = key_of(value)
            if len(_KEYS) >= _KEYS_MAX:
                _KEYS.clear()
            _KEYS[value] = key
        bins = self._bins[slot]
        if bins is None:
            bins = self._bins[slot] = DenseBins()
        # DenseBins.add inlined for the common case: a value within the bucket's
        # occupied dense range (positive keys only live there).
        lo = bins.lo
        if lo <= key < bins.hi:
            bins.counts[key - lo] += 1
        else:
            bins.add(key)
        bins.valid += 1
        self.valid += 1
        if key <= self.limit_key:
            bins.good += 1
            self.good += 1
        return True

    def next_expiry_ms(self) -> int | None:
        if self.head is None or self.valid == 0:
            return None
        return (self.head + 1) * self.bucket_ms

    def nbytes(self) -> int:
        total = sys.getsizeof(self) + sys.getsizeof(self._bins)
        return total + sum(b.nbytes() for b in self._bins if b is not None)

    def to_dict(self) -> dict[str, Any]:
        buckets: list[list[Any]] = []
        if self.head is not None and self.valid:
            for index in range(self.head - self.size + 1, self.head + 1):
                bins = self._bins[index % self.size]
                if bins is not None:
                    buckets.append([index, [[k, c] for k, c in bins.items()]])
        return {"w": self.bucket_ms, "n": self.size, "head": self.head, "b": buckets}

    @classmethod
    def from_dict(cls, data: dict[str, Any], window_ms: int, threshold: float) -> QuantileWindow:
        window = cls(window_ms, threshold)
        if data["w"] != window.bucket_ms or data["n"] != window.size:
            raise ValueError("window shape changed")
        window.head = data["head"]
        for index, pairs in data["b"]:
            if window.head is None or not window.head - window.size < index <= window.head:
                raise ValueError("bucket outside the window")
            slot = int(index) % window.size
            bins = window._bins[slot] = DenseBins()
            for key, count in pairs:
                if count <= 0:
                    raise ValueError("bin count out of range")
                bins.add(int(key), int(count))
                bins.valid += int(count)
                window.valid += int(count)
                if key <= window.limit_key:
                    bins.good += int(count)
                    window.good += int(count)
        return window
