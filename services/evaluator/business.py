"""Business time: working hours of a Calendar, as integer-ms arithmetic.

A :class:`BusinessClock` answers two questions, both pure:

* :meth:`~BusinessClock.elapsed` — how much working time lies in ``[a, b)``;
* :meth:`~BusinessClock.add` — the instant at which ``ms`` of working time have passed
  after ``start``.

Timeline (Mon-Fri 09:00-17:00): a P1 opened Friday 16:50 with 15 minutes::

    Fri 16:50 ──10 min──▶ 17:00 │ closed: Sat, Sun │ Mon 09:00 ──5 min──▶ 09:05 breach

Working intervals are built per local date in the calendar's time zone (so DST days
are as long as the wall clock says) and skip holidays: explicit dates and a country's
public holidays (:class:`~shared.definitions.kinds.calendar.HolidaySet`). Without
working hours the clock runs all the time (:data:`ALWAYS`).
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

from shared.definitions.kinds.calendar import WEEKDAYS, CalendarSpec, HolidaySet, minute_of_day

MAX_DAYS = 3 * 366  # search horizon: targets longer than three years of workdays fail


class BusinessClock:
    """Working time of a calendar (see the module docstring)."""

    def __init__(self, spec: CalendarSpec | None) -> None:
        self.always = spec is None or not spec.hours
        self.zone = ZoneInfo(spec.timezone if spec else "UTC")
        self.holidays = HolidaySet(spec)
        self.hours: dict[int, list[tuple[int, int]]] = {d: [] for d in range(7)}
        for block in spec.hours if spec else ():
            for day in block.days:
                span = (minute_of_day(block.start), minute_of_day(block.end))
                self.hours[WEEKDAYS.index(day)].append(span)
        for spans in self.hours.values():
            spans.sort()

    def _intervals(self, day: date) -> list[tuple[int, int]]:
        if day in self.holidays:
            return []
        out: list[tuple[int, int]] = []
        for start_min, end_min in self.hours[day.weekday()]:
            out.append((self._at(day, start_min), self._at(day, end_min)))
        return out

    def _at(self, day: date, minute: int) -> int:
        base = datetime.combine(day, time(0), tzinfo=self.zone)
        if minute >= 1440:
            moment = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.zone)
        else:
            moment = base.replace(hour=minute // 60, minute=minute % 60)
        return int(moment.timestamp() * 1000)

    def _local_date(self, ms: int) -> date:
        return datetime.fromtimestamp(ms / 1000, tz=self.zone).date()

    def elapsed(self, a: int, b: int) -> int:
        """Working ms in ``[a, b)``."""
        if b <= a:
            return 0
        if self.always:
            return b - a
        total = 0
        day = self._local_date(a)
        last = self._local_date(b)
        while day <= last:
            for start, end in self._intervals(day):
                lo, hi = max(start, a), min(end, b)
                if hi > lo:
                    total += hi - lo
            day += timedelta(days=1)
        return total

    def add(self, start: int, ms: int) -> int:
        """The instant at which ``ms`` working ms have passed since ``start``."""
        if self.always or ms <= 0:
            return start + max(ms, 0)
        left = ms
        day = self._local_date(start)
        for _ in range(MAX_DAYS):
            for begin, end in self._intervals(day):
                lo = max(begin, start)
                if end <= lo:
                    continue
                if end - lo >= left:
                    return lo + left
                left -= end - lo
            day += timedelta(days=1)
        raise ValueError("target does not fit in the calendar's working time")
