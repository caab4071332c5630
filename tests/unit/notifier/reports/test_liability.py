"""Live liability: the credit owed at today's attainment, and projected to period end
at the current burn."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.reports.compute import RollupRow, build_report
from services.notifier.reports.liability import RECENT_MS, project, projected_attainment
from tests.unit.notifier.reports.support import HOUR, MIN, NOV, make_agreement

END = NOV + 30 * 86_400_000
DAY = 86_400_000


def rows(*minutes: tuple[int, int, int]) -> list[RollupRow]:
    return [
        RollupRow("availability", "customer=acme", {"customer": "acme"}, m, g, v)
        for m, g, v in minutes
    ]


def test_a_good_month_turning_bad_is_projected_to_owe() -> None:
    agreement = make_agreement()  # availability: 10 % below 0.99, 25 % below 0.95
    now = NOV + 10 * DAY
    # 9,950 of 10,000 good so far (99.5 %: nothing owed), but the last hour is at 80 %
    history = rows((NOV, 9_150, 9_150), (now - 30 * MIN, 800, 850))
    report = build_report(agreement, NOV, END, now=now, rollups=history, breaches=[])
    liability = project(agreement, report, history)
    assert liability is not None
    [availability] = [o for o in liability.objectives if o.objective == "availability"]
    assert availability.attainment == pytest.approx(9_950 / 10_000)
    assert availability.credit_percent == 0.0
    # 20 days more at 1,000 valid a day, 94.1 % of them good (the last hour): 95.9 %
    more = 10_000 * 20 / 10
    expected = (9_950 + 800 / 850 * more) / (10_000 + more)
    assert availability.projected_attainment == pytest.approx(expected)
    assert availability.projected_credit_percent == 10.0
    assert (liability.credit_percent, liability.projected_credit_percent) == (0.0, 10.0)


def test_a_complete_period_has_no_projection() -> None:
    agreement = make_agreement()
    history = rows((NOV, 90, 100))
    report = build_report(agreement, NOV, END, now=END + HOUR, rollups=history, breaches=[])
    assert project(agreement, report, history) is None


def test_a_quiet_last_hour_projects_the_period_so_far() -> None:
    agreement = make_agreement()
    now = NOV + 10 * DAY
    history = rows((NOV, 98, 100))  # nothing in the last hour
    report = build_report(agreement, NOV, END, now=now, rollups=history, breaches=[])
    liability = project(agreement, report, history)
    assert liability is not None
    [availability] = [o for o in liability.objectives if o.objective == "availability"]
    assert availability.projected_attainment == pytest.approx(0.98)
    assert RECENT_MS == HOUR


@given(
    st.integers(1, 10**6),
    st.integers(0, 10**6),
    st.integers(0, 10**6),
    st.integers(1, 10**9),
    st.integers(0, 10**9),
)
def test_the_projection_lies_between_the_past_and_the_recent_share(
    valid: int, good_part: int, recent_valid: int, elapsed: int, left: int
) -> None:
    good = min(good_part, valid)
    recent_good = recent_valid // 2
    got = projected_attainment(good, valid, recent_good, recent_valid, elapsed, left)
    past = good / valid
    recent = recent_good / recent_valid if recent_valid else past
    assert min(past, recent) - 1e-9 <= got <= max(past, recent) + 1e-9
