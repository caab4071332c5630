"""Public holidays of a Calendar's country (and subdivision) stop the business clock,
like its explicit holiday dates."""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest

from services.evaluator.business import BusinessClock
from services.evaluator.objectives.deadline import CompiledDeadline
from shared.definitions.model import CalendarSpec, DeadlineObjective
from shared.schemas import Event
from shared.timeutil import parse_time_ms
from tests.unit.evaluator.factories import agreement

MIN = 60_000
HOUR = 60 * MIN


def office(**fields: Any) -> CalendarSpec:
    """Berlin office hours, Mon-Fri 09:00-17:00, plus ``fields``."""
    return CalendarSpec.model_validate(
        {
            "timezone": "Europe/Berlin",
            "hours": [
                {"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}
            ],
            **fields,
        }
    )


def t(text: str) -> int:
    return parse_time_ms(text)


def p1_breach_at(calendar: CalendarSpec, opened: int) -> int:
    """When a 15-minute P1 response deadline opened at ``opened`` breaches, seen only
    through watermark ticks."""
    doc = agreement(
        name="desk",
        kind="deadline",
        service="desk",
        start=["ticket.opened"],
        stop=["ticket.responded"],
        target="15m",
        calendar="office",
        good=None,
        window=None,
        select=None,
        alerting=None,
    )
    objective = doc.spec.objectives[0]
    assert isinstance(objective, DeadlineObjective)
    shard = CompiledDeadline(doc, objective, lambda: 0, calendar).new_shard()
    shard.on_event(Event(id="o", service="desk", type="ticket.opened", time=opened, entity="T-1"))
    out = shard.advance(opened + 10 * 24 * HOUR)
    return next(b.at for b in out if b.kind == "breach.opened")


@pytest.mark.parametrize(
    ("opened", "without_country", "with_de"),
    [
        # Thursday before Christmas Day (Friday 2026-12-25) → Monday after the weekend.
        ("2026-12-24T16:50:00+01:00", "2026-12-25T09:05:00+01:00", "2026-12-28T09:05:00+01:00"),
        # Wednesday before Ascension Day (Thursday 2027-05-06, Easter 2027-03-28) → Friday.
        ("2027-05-05T16:50:00+02:00", "2027-05-06T09:05:00+02:00", "2027-05-07T09:05:00+02:00"),
        # New Year's Eve into New Year's Day (Friday 2027-01-01): the clock spans two years.
        ("2026-12-31T16:50:00+01:00", "2027-01-01T09:05:00+01:00", "2027-01-04T09:05:00+01:00"),
    ],
)
def test_a_german_public_holiday_is_skipped_by_the_deadline(
    opened: str, without_country: str, with_de: str
) -> None:
    assert p1_breach_at(office(), t(opened)) == t(without_country)
    assert p1_breach_at(office(country="DE"), t(opened)) == t(with_de)


@pytest.mark.parametrize(
    ("fields", "working_hours"),
    [
        ({}, 8),
        ({"country": "DE"}, 8),  # Epiphany is not a holiday everywhere in Germany
        ({"country": "DE", "subdivision": "BW"}, 0),
        ({"country": "DE", "subdivision": "BY"}, 0),
        ({"country": "DE", "subdivision": "BE"}, 8),
    ],
)
def test_a_subdivision_holiday_applies_only_with_that_subdivision(
    fields: dict[str, str], working_hours: int
) -> None:
    clock = BusinessClock(office(**fields))
    epiphany = (t("2026-01-06T00:00:00+01:00"), t("2026-01-07T00:00:00+01:00"))  # Tuesday
    assert clock.elapsed(*epiphany) == working_hours * HOUR


def test_explicit_dates_and_public_holidays_add_up() -> None:
    clock = BusinessClock(office(country="DE", holidays=["2026-12-24"]))
    assert date(2026, 12, 24) in clock.holidays  # explicit
    assert date(2026, 12, 25) in clock.holidays  # public
    assert date(2026, 12, 23) not in clock.holidays
    week = (t("2026-12-21T00:00:00+01:00"), t("2026-12-28T00:00:00+01:00"))
    assert clock.elapsed(*week) == 3 * 8 * HOUR
