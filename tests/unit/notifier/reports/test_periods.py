"""Period names in requests and period labels, in the agreement's time zone."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

import pytest

from services.notifier.reports import periods
from services.notifier.reports.exceptions import BadPeriod

BERLIN = "Europe/Berlin"


def local_ms(*args: int, tz: str = BERLIN) -> int:
    return int(datetime(*args, tzinfo=ZoneInfo(tz)).timestamp() * 1000)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("text", "every", "start", "end", "label"),
    [
        ("2026-11", "month", (2026, 11, 1), (2026, 12, 1), "2026-11"),
        ("2026-11-15", "month", (2026, 11, 1), (2026, 12, 1), "2026-11"),
        ("2026-11-15T10:00:00+01:00", "month", (2026, 11, 1), (2026, 12, 1), "2026-11"),
        ("2026-11", "quarter", (2026, 10, 1), (2027, 1, 1), "2026-Q4"),
        ("2026-Q1", "quarter", (2026, 1, 1), (2026, 4, 1), "2026-Q1"),
        ("2026-W48", "week", (2026, 11, 23), (2026, 11, 30), "2026-W48"),
        ("2027-01-01", "week", (2026, 12, 28), (2027, 1, 4), "2026-W53"),
        # March in Berlin is one hour short (DST starts).
        ("2026-03", "month", (2026, 3, 1), (2026, 4, 1), "2026-03"),
    ],
)
def test_a_period_text_names_the_period_containing_it(
    text: str,
    every: periods.Period,
    start: tuple[int, int, int],
    end: tuple[int, int, int],
    label: str,
) -> None:
    got = periods.bounds(periods.instant_in(text, BERLIN), every, BERLIN)
    assert got == (local_ms(*start), local_ms(*end))
    assert periods.label(got[0], every, BERLIN) == label


def test_the_first_of_the_month_is_a_local_midnight() -> None:
    # 2026-11-01 00:00 in Berlin is still 31 October in UTC.
    start, _ = periods.bounds(periods.instant_in("2026-11", BERLIN), "month", BERLIN)
    assert start == local_ms(2026, 10, 31, 23, tz="UTC")


def test_previous_period() -> None:
    start = local_ms(2026, 1, 1)
    assert periods.previous(start, "month", BERLIN) == (local_ms(2025, 12, 1), start)


@pytest.mark.parametrize(
    "text", ["2026-13", "2026-W60", "2026-Q5", "november", "2026-11-15T10:00:00", ""]
)
def test_bad_period_text(text: str) -> None:
    with pytest.raises(BadPeriod, match="names no period"):
        periods.instant_in(text, BERLIN)
