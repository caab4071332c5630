"""Calendar periods (week, month, quarter) in a time zone, as integer-ms bounds.

A period is ``[start, end)`` in epoch ms; boundaries are local midnights of the time
zone, so a month in ``Europe/Berlin`` is 743 or 745 hours long across a DST change.
Weeks start on Monday.

    ...──┬───────── March (local) ─────────┬──────── April ───────┬──...
       start                              end = next start
"""

from __future__ import annotations

import sys
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Literal
from zoneinfo import ZoneInfo

Period = Literal["week", "month", "quarter"]


@lru_cache(maxsize=64)
def _zone(name: str) -> ZoneInfo:
    return ZoneInfo(name)


def _ms(moment: datetime) -> int:
    return int(moment.timestamp() * 1000)


def _start_of(local: datetime, period: Period) -> datetime:
    midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
    if period == "week":
        day = midnight - timedelta(days=midnight.weekday())
        return day.replace(tzinfo=local.tzinfo)
    if period == "month":
        return midnight.replace(day=1)
    return midnight.replace(month=(midnight.month - 1) // 3 * 3 + 1, day=1)


def _next(start: datetime, period: Period) -> datetime:
    if period == "week":
        return (start.replace(tzinfo=None) + timedelta(days=7)).replace(tzinfo=start.tzinfo)
    months = 1 if period == "month" else 3
    month = start.month - 1 + months
    return start.replace(year=start.year + month // 12, month=month % 12 + 1)


def period_bounds(time_ms: int, period: Period, timezone: str) -> tuple[int, int]:
    """``(start, end)`` of the period containing ``time_ms``."""
    zone = _zone(timezone)
    local = datetime.fromtimestamp(time_ms / 1000, tz=zone)
    start = _start_of(local, period)
    end = _next(start, period)
    # replace() keeps wall time; re-attach the zone so the UTC offset fits the date.
    start = start.replace(tzinfo=None).replace(tzinfo=zone)
    end = end.replace(tzinfo=None).replace(tzinfo=zone)
    return _ms(start), _ms(end)


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
