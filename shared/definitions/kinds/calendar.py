"""Calendars: a time zone, weekly working hours and holidays, for business time.

A deadline objective measured in business time names a Calendar; its clock only runs
inside working hours that are not holidays::

    apiVersion: slawatch/v1
    kind: Calendar
    metadata: {name: berlin-office}
    spec:
      timezone: Europe/Berlin
      hours:
        - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
      holidays: ["2026-12-25", "2026-12-26"]
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, field_validator, model_validator

from shared.definitions.kinds.common import Metadata, Spec

Weekday = Literal["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
WEEKDAYS: tuple[Weekday, ...] = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]\d|2[0-3]):([0-5]\d)$|^24:00$")


def timezone_name(name: str) -> str:
    """Field validator: an IANA time zone such as ``Europe/Berlin``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone {name!r}") from None
    return name


def minute_of_day(text: str) -> int:
    """``"09:30"`` → 570; ``"24:00"`` → 1440."""
    if not _CLOCK.match(text):
        raise ValueError(f"invalid time of day {text!r}: write HH:MM")
    hours, minutes = text.split(":")
    return int(hours) * 60 + int(minutes)


class WorkingHours(Spec):
    """Working hours on some weekdays, ``start`` to ``end`` local time (end exclusive)."""

    days: list[Weekday] = Field(min_length=1)
    start: str
    end: str

    @field_validator("start", "end")
    @classmethod
    def _clock(cls, text: str) -> str:
        minute_of_day(text)
        return text

    @model_validator(mode="after")
    def _ordered(self) -> WorkingHours:
        if minute_of_day(self.start) >= minute_of_day(self.end):
            raise ValueError("'start' must be before 'end'")
        return self


class CalendarSpec(Spec):
    """Time zone, weekly working hours (none: all week, all day) and holiday dates."""

    timezone: str = "UTC"
    hours: list[WorkingHours] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)

    _tz_ok = field_validator("timezone")(timezone_name)


class Calendar(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Calendar"]
    metadata: Metadata
    spec: CalendarSpec
