"""Which reporting period a request names, and how a period is labelled (pure).

A period is ``[start, end)`` in epoch ms, computed by
:func:`shared.periods.period_bounds` (local midnights of the agreement's
time zone; weeks from Monday). A request names a period by any instant inside it:

    2026-11        the month's first local midnight      (label of a month period)
    2026-W48       Monday of ISO week 48                 (label of a week period)
    2026-Q4        the quarter's first local midnight    (label of a quarter period)
    2026-11-15     that local midnight
    2026-11-15T10:00:00+01:00   that instant (RFC 3339)

The named instant picks the agreement's period that contains it, so ``2026-11`` on a
quarterly agreement is Q4 2026.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from zoneinfo import ZoneInfo

from services.notifier.reports.exceptions import BadPeriod
from shared.periods import Period, period_bounds
from shared.timeutil import parse_time_ms

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_WEEK = re.compile(r"^(\d{4})-W(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _midnight_ms(day: date, timezone: str) -> int:
    local = datetime(day.year, day.month, day.day, tzinfo=ZoneInfo(timezone))
    return int(local.timestamp() * 1000)


def instant_in(text: str, timezone: str) -> int:
    """An instant (epoch ms) inside the period ``text`` names, in ``timezone``."""
    text = text.strip()
    try:
        if m := _MONTH.match(text):
            return _midnight_ms(date(int(m.group(1)), int(m.group(2)), 1), timezone)
        if m := _WEEK.match(text):
            return _midnight_ms(date.fromisocalendar(int(m.group(1)), int(m.group(2)), 1), timezone)
        if m := _QUARTER.match(text):
            month = (int(m.group(2)) - 1) * 3 + 1
            return _midnight_ms(date(int(m.group(1)), month, 1), timezone)
        if _DATE.match(text):
            return _midnight_ms(date.fromisoformat(text), timezone)
        return parse_time_ms(text)
    except ValueError as exc:
        raise BadPeriod(
            f"{text!r} names no period ({exc}); write 2026-11, 2026-W48, 2026-Q4, "
            "a date 2026-11-15 or an RFC 3339 time"
        ) from None


def bounds(time_ms: int, every: Period, timezone: str) -> tuple[int, int]:
    """``(start, end)`` of the ``every`` period containing ``time_ms``."""
    return period_bounds(time_ms, every, timezone)


def previous(start: int, every: Period, timezone: str) -> tuple[int, int]:
    """The period just before the one starting at ``start``."""
    return period_bounds(start - 1, every, timezone)


def label(start: int, every: Period, timezone: str) -> str:
    """``2026-11``, ``2026-W48`` or ``2026-Q4`` for the period starting at ``start``."""
    local = datetime.fromtimestamp(start / 1000, tz=ZoneInfo(timezone))
    if every == "week":
        year, week, _ = local.isocalendar()
        return f"{year}-W{week:02d}"
    if every == "quarter":
        return f"{local.year}-Q{(local.month - 1) // 3 + 1}"
    return f"{local.year}-{local.month:02d}"
