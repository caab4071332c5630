"""Retry delays: exponential backoff with full jitter (pure).

After attempt ``n`` (1-based) failed, the next try waits a uniform random time in
``[0, min(max_ms, base_ms * 2**(n-1)))`` ("full jitter", which spreads retries of
many deliveries that failed together). A server's ``Retry-After`` is a floor: the
wait is never shorter than asked, capped at ``retry_after_cap_ms`` so a hostile or
broken header cannot park a delivery for days.

    attempt   1      2      3      4     ...
    ceiling   base   2base  4base  8base ... max
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from shared.settings import Settings

Random = Callable[[], float]
"""A source of floats in ``[0, 1)``, e.g. ``random.Random(seed).random``."""

DEFAULT_RETRY_AFTER_CAP_MS = 3_600_000


@dataclass(frozen=True)
class Backoff:
    """Backoff policy; ``delay_ms`` is a pure function of its arguments."""

    base_ms: int
    max_ms: int
    retry_after_cap_ms: int = DEFAULT_RETRY_AFTER_CAP_MS

    @classmethod
    def from_settings(cls, settings: Settings) -> Backoff:
        return cls(
            base_ms=settings.delivery_backoff_base_ms,
            max_ms=max(settings.delivery_backoff_max_ms, settings.delivery_backoff_base_ms),
        )

    def ceiling_ms(self, attempt: int) -> int:
        """Upper bound of the wait after ``attempt`` failed attempts (≥ 1)."""
        exponent = min(max(attempt, 1) - 1, 62)
        return min(self.max_ms, self.base_ms * (1 << exponent))

    def delay_ms(self, attempt: int, random: Random, retry_after_ms: int | None = None) -> int:
        """The wait before the next try after ``attempt`` failed attempts."""
        jittered = int(random() * self.ceiling_ms(attempt))
        if retry_after_ms is None or retry_after_ms <= 0:
            return jittered
        return max(jittered, min(retry_after_ms, max(self.retry_after_cap_ms, self.max_ms)))


def parse_retry_after_ms(value: str | None) -> int | None:
    """``Retry-After`` in delay-seconds form → ms; absent, dates and garbage → ``None``."""
    if value is None:
        return None
    text = value.strip()
    if not text.isdigit():
        return None
    return int(text) * 1000
