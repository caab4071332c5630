"""A counter of good/valid events per calendar period (see :mod:`shared.periods`)."""

from __future__ import annotations

import sys

from shared.periods import Period, period_bounds


class PeriodCounter:
    """Good and valid counts since the start of the current calendar period.

    An event from before the current period (possible within the allowed lateness
    right after a boundary) is refused, as the rolling window refuses expired events.
    """

    __slots__ = ("end", "good", "period", "start", "timezone", "valid")

    def __init__(self, period: Period, timezone: str) -> None:
        self.period: Period = period
        self.timezone = timezone
        self.start: int | None = None
        self.end: int | None = None
        self.good = 0
        self.valid = 0

    @property
    def sli(self) -> float | None:
        return self.good / self.valid if self.valid else None

    def advance(self, time_ms: int) -> None:
        if self.end is not None and time_ms < self.end:
            return
        self.start, self.end = period_bounds(time_ms, self.period, self.timezone)
        self.good = 0
        self.valid = 0

    def add(self, time_ms: int, good: bool) -> bool:
        self.advance(time_ms)
        assert self.start is not None
        if time_ms < self.start:
            return False
        self.valid += 1
        if good:
            self.good += 1
        return True

    def next_expiry_ms(self) -> int | None:
        return self.end if self.valid else None

    def nbytes(self) -> int:

        return sys.getsizeof(self)

    def to_dict(self) -> dict[str, int | None]:
        return {"start": self.start, "end": self.end, "good": self.good, "valid": self.valid}

    @classmethod
    def from_dict(cls, data: dict[str, int | None], period: Period, timezone: str) -> PeriodCounter:
        counter = cls(period, timezone)
        counter.start, counter.end = data["start"], data["end"]
        good, valid = data["good"], data["valid"]
        if good is None or valid is None or not 0 <= good <= valid:
            raise ValueError("period counts out of range")
        counter.good, counter.valid = good, valid
        return counter
