"""Calendars: a time zone, weekly working hours and holidays, for business time.

A deadline objective measured in business time names a Calendar; its clock only runs
inside working hours that are not holidays. Holidays are the explicit ``holidays``
dates plus, with ``country`` (and optionally ``subdivision``), that country's public
holidays from the ``holidays`` library (:class:`HolidaySet`)::

    apiVersion: slawatch/v1
    kind: Calendar
    metadata: {name: berlin-office}
    spec:
      timezone: Europe/Berlin
      hours:
        - {days: [mon, tue, wed, thu, fri], start: "09:00", end: "17:00"}
      country: DE
      subdivision: BY
      holidays: ["2026-12-24", "2026-12-31"]
"""

from __future__ import annotations

import re
from datetime import date
from typing import Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationInfo, field_validator, model_validator

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


def _supported() -> dict[str, list[str]]:
    # Imported here, not at module level: the library takes ~0.1 s to import and
    # ~0.1 s more to list its countries, which only calendars naming a country need.
    import holidays

    return holidays.list_supported_countries()


class CalendarSpec(Spec):
    """Time zone, weekly working hours (none: all week, all day) and holidays: explicit
    dates and, optionally, a country's (and subdivision's) public holidays."""

    timezone: str = "UTC"
    hours: list[WorkingHours] = Field(default_factory=list)
    holidays: list[date] = Field(default_factory=list)
    country: str | None = None
    subdivision: str | None = None

    _tz_ok = field_validator("timezone")(timezone_name)

    @field_validator("country")
    @classmethod
    def _country(cls, code: str | None) -> str | None:
        if code is not None and code not in _supported():
            hint = f"; did you mean {code.upper()!r}?" if code.upper() in _supported() else ""
            raise ValueError(
                f"unknown country {code!r}: use an ISO 3166-1 alpha-2 code that the "
                f"'holidays' library supports, such as 'DE'{hint}"
            )
        return code

    @field_validator("subdivision")
    @classmethod
    def _subdivision(cls, code: str | None, info: ValidationInfo) -> str | None:
        if code is None or "country" not in info.data:  # an invalid country is reported
            return code
        country = info.data["country"]
        if country is None:
            raise ValueError("'subdivision' needs 'country'")
        known = _supported()[country]
        if code not in known:
            listed = ", ".join(known) if known else "none"
            raise ValueError(f"unknown subdivision {code!r} of {country!r}: one of {listed}")
        return code


class HolidaySet:
    """The days off of a calendar: its explicit ``holidays`` plus the public holidays of its
    ``country`` (and ``subdivision``).

    Supports ``day in holiday_set``. Public holidays are computed one year at a time,
    on the first lookup of a date in that year, and kept: business time may span years.
    Pure and deterministic: the library derives each year from its rules, never from
    the clock.
    """

    def __init__(self, spec: CalendarSpec | None) -> None:
        self._explicit = frozenset(spec.holidays) if spec else frozenset[date]()
        self._country = spec.country if spec else None
        self._subdivision = spec.subdivision if spec else None
        self._years: dict[int, frozenset[date]] = {}

    def __contains__(self, day: object) -> bool:
        if not isinstance(day, date):
            return False
        if day in self._explicit:
            return True
        if self._country is None:
            return False
        public = self._years.get(day.year)
        if public is None:
            public = self._years[day.year] = self._public(self._country, day.year)
        return day in public

    def _public(self, country: str, year: int) -> frozenset[date]:
        import holidays  # see _supported

        found = holidays.country_holidays(country, subdiv=self._subdivision, years=year)
        return frozenset(found)


class Calendar(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Calendar"]
    metadata: Metadata
    spec: CalendarSpec
