"""Per-key rate limits: a token bucket (pure; the caller passes the time).

A bucket holds up to ``burst`` tokens and gains ``per_s`` tokens a second; a request
takes one. Empty, the request is refused with the time until a token is there::

    burst 2, 1/s:   t=0 take → 1 left, take → 0 left, take → refused (retry in 1 s)
                    t=1 s take → 0 left (one token came back)
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*/\s*(s|m|h)\s*$")
_UNIT_S = {"s": 1.0, "m": 60.0, "h": 3600.0}


@dataclass(frozen=True)
class Rate:
    """Sustained requests per second and the burst allowed above it."""

    per_s: float
    burst: int

    def __post_init__(self) -> None:
        if self.per_s <= 0 or self.burst < 1:
            raise ValueError("a rate is above 0 per second with a burst of at least 1")


def parse_rate(text: str) -> float:
    """``50/s``, ``600/m``, ``1000/h`` → requests per second."""
    match = _RATE.match(text)
    if match is None or float(match.group(1)) <= 0:
        raise ValueError(f"write a rate as N/s, N/m or N/h, not {text!r}")
    return float(match.group(1)) / _UNIT_S[match.group(2)]


class TokenBucket:
    """One key's bucket; starts full."""

    def __init__(self, rate: Rate, now_ms: int) -> None:
        self.rate = rate
        self._tokens = float(rate.burst)
        self._at = now_ms

    def take(self, now_ms: int) -> int:
        """Take a token: 0 when allowed, else the milliseconds until one is there."""
        elapsed_s = max(now_ms - self._at, 0) / 1000
        self._tokens = min(self.rate.burst, self._tokens + elapsed_s * self.rate.per_s)
        self._at = max(now_ms, self._at)
        if self._tokens >= 1:
            self._tokens -= 1
            return 0
        return max(1, math.ceil((1 - self._tokens) / self.rate.per_s * 1000))


class Buckets:
    """A bucket per key name; a key whose rate changed starts a new bucket."""

    def __init__(self) -> None:
        self._buckets: dict[str, TokenBucket] = {}

    def take(self, name: str, rate: Rate, now_ms: int) -> int:
        bucket = self._buckets.get(name)
        if bucket is None or bucket.rate != rate:
            bucket = self._buckets[name] = TokenBucket(rate, now_ms)
        return bucket.take(now_ms)

    def forget_all_but(self, names: set[str]) -> None:
        """Drop buckets of keys no longer known (revoked or deleted)."""
        for name in list(self._buckets):
            if name not in names:
                del self._buckets[name]
