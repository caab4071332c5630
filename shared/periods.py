"""Calendar periods (week, month, quarter) in a time zone, as integer-ms bounds.

Shared by the evaluator (calendar windows and budgets) and the notifier's period
reports, so both cut periods at the same instants.

A period is ``[start, end)`` in epoch ms; boundaries are local midnights of the time
zone, so a month in ``Europe/Berlin`` is 743 or 745 hours long across a DST change.
Weeks start on Monday.

    ...──┬───────── March (local) ─────────┬──────── April ───────┬──...
       start                              end = next start
"""

from __future__ import annotations

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
