"""Period reports from hand-computed tables, and attainment against a brute force."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.notifier.reports.compute import (
    DEADLINE_REASON,
    BreachSpan,
    Exclusion,
    ObjectiveReport,
    Report,
    RollupRow,
    build_report,
    lookback_start,
)
from tests.unit.notifier.reports.support import HOUR, MIN, NOV, OCT, make_agreement

ACME = {"customer": "acme"}
BETA = {"customer": "beta"}


def row(
    objective: str, minute: int, good: int, valid: int, group: dict[str, str] | None = None
) -> RollupRow:
    group = group or {}
    key = ",".join(f"{k}={v}" for k, v in sorted(group.items()))
    return RollupRow(objective, key, group, minute, good, valid)


def breach(
    objective: str,
    opened: int,
    resolved: int | None,
    group: dict[str, Any] | None = None,
    id: str = "b",
) -> BreachSpan:
    return BreachSpan(id, objective, group or {}, "page", opened, resolved)


ROWS = [
    row("availability", NOV, 90, 100, ACME),
    row("availability", NOV + MIN, 100, 100, ACME),
    row("availability", NOV, 300, 300, BETA),
    row("latency", NOV + 10 * MIN, 95, 100),
]


def objective(report: Report, name: str) -> ObjectiveReport:
    [found] = [o for o in report.objectives if o.name == name]
    return found


def test_attainment_budget_and_credit_per_objective_and_group() -> None:
    report = build_report(
        make_agreement(), NOV, NOV + 30 * 86_400_000, now=NOV + 10 * HOUR, rollups=ROWS, breaches=[]
    )
    availability = objective(report, "availability")
    # 490 good of 500 valid; target 0.99: 2 % missing of a 1 % budget.
    assert (availability.total.good, availability.total.valid) == (490, 500)
    assert availability.total.attainment == pytest.approx(0.98)
    assert availability.total.met is False
    assert availability.total.error_budget_used == pytest.approx(2.0)
    assert availability.total.credit_percent == 10
    acme, beta = availability.groups
    assert (acme.group, acme.attainment, acme.met) == (ACME, pytest.approx(0.95), False)
    assert acme.credit_percent == 10  # 0.95 is not below 0.95
    assert (beta.attainment, beta.met, beta.credit_percent) == (1.0, True, 0)
    latency = objective(report, "latency")
    assert latency.target == 0.9
    assert latency.total.attainment == pytest.approx(0.95)
    assert latency.total.met is True
    assert latency.total.error_budget_used == pytest.approx(0.5)
    assert latency.groups == ()
    assert report.credit.percent == 10
    assert report.credit.objective == "availability"
    assert report.missed is True
    assert report.complete is False
    assert report.label == "2026-11"


def test_maintenance_minutes_are_left_out_when_the_agreement_says_so() -> None:
    window = Exclusion(
        "MaintenanceWindow/upgrade", {"service": "checkout"}, NOV + MIN, NOV + 2 * MIN
    )
    agreement = make_agreement()
    report = build_report(
        agreement, NOV, NOV + HOUR, now=NOV + HOUR, rollups=ROWS, breaches=[], windows=[window]
    )
    availability = objective(report, "availability")
    # acme's second minute (100 of 100) is maintenance time: 90 of 100 remain.
    acme = availability.groups[0]
    assert (acme.good, acme.valid, acme.excluded_valid) == (90, 100, 100)
    assert acme.credit_percent == 25
    assert availability.total.attainment == pytest.approx(390 / 400)
    assert availability.exclusions == ("MaintenanceWindow/upgrade",)
    # Without maintenance.exclude the same window does not count.
    kept = build_report(
        make_agreement(maintenance=None),
        NOV,
        NOV + HOUR,
        now=NOV + HOUR,
        rollups=ROWS,
        breaches=[],
        windows=[window],
    )
    assert objective(kept, "availability").total.valid == 500


@pytest.mark.parametrize(
    ("window_match", "policy_match", "excluded"),
    [
        ({}, {}, True),
        ({"customer": "acme"}, {}, True),
        ({"customer": "beta"}, {}, False),
        ({"agreement": "acme", "objective": "availability"}, {}, True),
        ({"party": "acme"}, {}, True),
        ({"severity": "page"}, {}, False),  # only a breach has a severity
        ({}, {"service": "checkout"}, True),
        ({}, {"service": "storefront"}, False),
    ],
)
def test_which_windows_apply(
    window_match: dict[str, str], policy_match: dict[str, str], excluded: bool
) -> None:
    agreement = make_agreement(maintenance={"exclude": True, "match": policy_match})
    window = Exclusion("MaintenanceWindow/w", window_match, NOV, NOV + 2 * MIN)
    report = build_report(
        agreement, NOV, NOV + HOUR, now=NOV + HOUR, rollups=ROWS[:2], breaches=[], windows=[window]
    )
    acme = objective(report, "availability").groups[0]
    assert (acme.excluded_valid == 200) is excluded


def test_a_minute_partly_in_maintenance_counts_and_adjacent_windows_join() -> None:
    rows = [row("latency", NOV + MIN, 1, 10)]
    half = [Exclusion("MaintenanceWindow/a", {}, NOV + MIN + 30_000, NOV + 3 * MIN)]
    report = build_report(
        make_agreement(), NOV, NOV + HOUR, now=NOV + HOUR, rollups=rows, breaches=[], windows=half
    )
    assert objective(report, "latency").total.valid == 10
    joined = [*half, Exclusion("MaintenanceWindow/b", {}, NOV, NOV + MIN + 30_000)]
    report = build_report(
        make_agreement(), NOV, NOV + HOUR, now=NOV + HOUR, rollups=rows, breaches=[], windows=joined
    )
    assert objective(report, "latency").total.excluded_valid == 10


def test_breach_durations_are_clipped_to_the_period_and_now() -> None:
    breaches = [
        breach("availability", NOV - HOUR, NOV + 30 * MIN, ACME, id="before"),
        breach("availability", NOV + 9 * HOUR, None, BETA, id="open"),
        breach("availability", NOV + 2 * HOUR, NOV + 2 * HOUR + 5 * MIN, ACME, id="short"),
    ]
    report = build_report(
        make_agreement(),
        NOV,
        NOV + 30 * 86_400_000,
        now=NOV + 10 * HOUR,
        rollups=ROWS,
        breaches=breaches,
    )
    availability = objective(report, "availability")
    durations = {b.id: (b.duration_ms, b.open_at_end) for b in availability.total.breaches}
    assert durations == {
        "before": (30 * MIN, False),
        "short": (5 * MIN, False),
        "open": (HOUR, True),
    }
    acme, beta = availability.groups
    assert [b.id for b in acme.breaches] == ["before", "short"]
    assert acme.breached_ms == 35 * MIN
    assert beta.breached_ms == HOUR


def test_a_breach_group_without_counts_is_listed() -> None:
    breaches = [breach("availability", NOV, NOV + MIN, {"customer": "gamma"})]
    report = build_report(
        make_agreement(), NOV, NOV + HOUR, now=NOV + HOUR, rollups=ROWS, breaches=breaches
    )
    gamma = objective(report, "availability").groups[-1]
    assert (gamma.group, gamma.valid, gamma.attainment, gamma.met) == (
        {"customer": "gamma"},
        0,
        None,
        None,
    )


def test_freshness_is_the_share_of_time_not_breached() -> None:
    breaches = [breach("heartbeat", NOV + HOUR, NOV + 2 * HOUR)]
    report = build_report(
        make_agreement(),
        NOV,
        NOV + 30 * 86_400_000,
        now=NOV + 10 * HOUR,
        rollups=[],
        breaches=breaches,
    )
    heartbeat = objective(report, "heartbeat")
    assert heartbeat.measured is True
    assert heartbeat.total.attainment == pytest.approx(0.9)
    assert heartbeat.total.breached_ms == HOUR
    assert (heartbeat.target, heartbeat.total.met, heartbeat.total.credit_percent) == (
        None,
        None,
        0,
    )
    # A maintenance window leaves its time out of both the breached and the measured time.
    window = Exclusion("MaintenanceWindow/m", {}, NOV + 90 * MIN, NOV + 3 * HOUR)
    report = build_report(
        make_agreement(),
        NOV,
        NOV + 30 * 86_400_000,
        now=NOV + 10 * HOUR,
        rollups=[],
        breaches=breaches,
        windows=[window],
    )
    heartbeat = objective(report, "heartbeat")
    assert heartbeat.total.attainment == pytest.approx(1 - 0.5 / 8.5)
    assert heartbeat.total.breached_ms == 30 * MIN


def test_deadline_is_not_measured_but_lists_its_breaches() -> None:
    breaches = [breach("tickets", NOV + HOUR, NOV + 3 * HOUR, {"entity": "T-1"})]
    report = build_report(
        make_agreement(),
        NOV,
        NOV + 30 * 86_400_000,
        now=NOV + 10 * HOUR,
        rollups=[],
        breaches=breaches,
    )
    tickets = objective(report, "tickets")
    assert (tickets.measured, tickets.reason, tickets.total.attainment) == (
        False,
        DEADLINE_REASON,
        None,
    )
    assert [b.duration_ms for b in tickets.total.breaches] == [2 * HOUR]


def test_no_valid_events_is_not_measured_and_decides_nothing() -> None:
    report = build_report(
        make_agreement(), NOV, NOV + HOUR, now=NOV + HOUR, rollups=[], breaches=[]
    )
    availability = objective(report, "availability")
    assert (availability.measured, availability.total.attainment, availability.total.met) == (
        False,
        None,
        None,
    )
    assert report.missed is None
    assert report.credit.percent == 0
    assert report.termination.consecutive_missed_periods == 0


@pytest.mark.parametrize(
    ("october", "run", "at_risk"),
    [
        ([row("availability", OCT + 5 * MIN, 0, 10, ACME)], 2, True),  # missed
        ([row("availability", OCT + 5 * MIN, 10, 10, ACME)], 1, False),  # met
        ([], 1, False),  # not measured: the run stops
    ],
)
def test_consecutive_missed_periods(october: list[RollupRow], run: int, at_risk: bool) -> None:
    agreement = make_agreement()
    assert lookback_start(agreement, NOV) == OCT
    report = build_report(
        agreement,
        NOV,
        NOV + 30 * 86_400_000,
        now=NOV + HOUR,
        rollups=[*october, *ROWS],
        breaches=[],
    )
    assert report.termination.consecutive_missed_periods == run
    assert report.termination.at_risk is at_risk
    assert report.termination.rule == 2
    assert [p.label for p in report.termination.history] == ["2026-11", "2026-10"]


def test_without_a_termination_rule_only_this_period_counts() -> None:
    agreement = make_agreement(termination=None)
    assert lookback_start(agreement, NOV) == NOV
    report = build_report(agreement, NOV, NOV + HOUR, now=NOV + HOUR, rollups=ROWS, breaches=[])
    assert (report.termination.consecutive_missed_periods, report.termination.at_risk) == (1, False)


def test_a_tier_without_objective_applies_to_every_objective() -> None:
    agreement = make_agreement(penalties=[{"below": 0.97, "creditPercent": 15}])
    report = build_report(agreement, NOV, NOV + HOUR, now=NOV + HOUR, rollups=ROWS, breaches=[])
    # latency: 0.95 of values within the threshold is below 0.97 too; availability (0.98) is not.
    assert (report.credit.percent, report.credit.objective) == (15, "latency")


# -- property: attainment with maintenance exclusion against a brute force ----------

minutes = st.integers(min_value=0, max_value=30)
groups = st.sampled_from([ACME, BETA])


@st.composite
def rollup_rows(draw: st.DrawFn) -> list[RollupRow]:
    out: dict[tuple[str, int], RollupRow] = {}
    for _ in range(draw(st.integers(0, 25))):
        group = draw(groups)
        minute = NOV + draw(minutes) * MIN
        valid = draw(st.integers(0, 50))
        good = draw(st.integers(0, valid))
        out[(group["customer"], minute)] = row("availability", minute, good, valid, group)
    return list(out.values())


@st.composite
def windows(draw: st.DrawFn) -> list[Exclusion]:
    out = []
    for i in range(draw(st.integers(0, 4))):
        # Whole seconds, so that checking each second of a minute is exact.
        start = NOV + draw(st.integers(-60, 32 * 60)) * 1000
        end = start + draw(st.integers(1, 10 * 60)) * 1000
        match = draw(st.sampled_from([{}, {"customer": "acme"}, {"customer": "beta"}]))
        out.append(Exclusion(f"MaintenanceWindow/w{i}", match, start, end))
    return out


def brute_force(
    rows: list[RollupRow], wins: list[Exclusion], customer: str | None
) -> tuple[int, int]:
    good = valid = 0
    for r in rows:
        if customer is not None and r.group["customer"] != customer:
            continue
        mine = [w for w in wins if all(r.group.get(k) == v for k, v in w.match.items())]
        covered = all(any(w.start <= r.minute + s * 1000 < w.end for w in mine) for s in range(60))
        if not covered:
            good += r.good
            valid += r.valid
    return good, valid


@settings(max_examples=300, deadline=None)
@given(rows=rollup_rows(), wins=windows())
def test_attainment_with_exclusions_matches_brute_force(
    rows: list[RollupRow], wins: list[Exclusion]
) -> None:
    report = build_report(
        make_agreement(), NOV, NOV + HOUR, now=NOV + HOUR, rollups=rows, breaches=[], windows=wins
    )
    availability = objective(report, "availability")
    good, valid = brute_force(rows, wins, None)
    assert (availability.total.good, availability.total.valid) == (good, valid)
    expected = good / valid if valid else None
    assert availability.total.attainment == (pytest.approx(expected) if valid else None)
    for series in availability.groups:
        assert (series.good, series.valid) == brute_force(rows, wins, series.group["customer"])
