"""The breach page's SLI chart from per-minute rollups (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.console.chart import (
    HEIGHT,
    MAX_BUCKETS,
    MINUTE_MS,
    PAD_BOTTOM,
    PAD_LEFT,
    PAD_RIGHT,
    PAD_TOP,
    WIDTH,
    Minute,
    bucket_size,
    buckets,
    current_definition,
    sli_chart,
)

T = 1_700_000_040_000 - 1_700_000_040_000 % MINUTE_MS


@pytest.mark.parametrize(
    ("minutes", "size_minutes"),
    [(1, 1), (120, 1), (121, 2), (240, 2), (241, 3), (7 * 1440, 84), (0, 1)],
)
def test_bucket_size(minutes: int, size_minutes: int) -> None:
    assert bucket_size(T, T + minutes * MINUTE_MS) == size_minutes * MINUTE_MS


@given(
    st.integers(1, 2_000),
    st.lists(st.tuples(st.integers(-10, 2_010), st.integers(0, 50), st.integers(0, 50))),
)
def test_buckets_match_a_brute_force_sum(
    span_minutes: int, specs: list[tuple[int, int, int]]
) -> None:
    start, end = T, T + span_minutes * MINUTE_MS
    rows = [Minute("f", T + m * MINUTE_MS, min(g, v), v) for m, g, v in specs]
    got = buckets(rows, start, end)
    size = bucket_size(start, end)
    assert len(got) <= MAX_BUCKETS
    assert got[0].start == start and got[-1].start < end <= got[-1].start + size
    for b in got:
        inside = [r for r in rows if b.start <= r.minute < b.start + size and r.minute < end]
        assert (b.good, b.valid) == (sum(r.good for r in inside), sum(r.valid for r in inside))


def test_only_the_definition_in_force_is_drawn() -> None:
    rows = [Minute("old", T, 1, 2), Minute("old", T + MINUTE_MS, 1, 2), Minute("new", T, 5, 5)]
    rows.append(Minute("new", T + 2 * MINUTE_MS, 5, 5))
    assert {r.fingerprint for r in current_definition(rows)} == {"new"}
    assert current_definition([]) == []


def test_nothing_valid_draws_nothing() -> None:
    assert sli_chart([], T, T + 60 * MINUTE_MS, 0.99) is None
    assert sli_chart([Minute("f", T, 0, 0)], T, T + 60 * MINUTE_MS, 0.99) is None


def test_a_chart_stays_in_its_box_splits_at_gaps_and_reports_the_budget() -> None:
    rows = [Minute("f", T + m * MINUTE_MS, 99, 100) for m in range(10)]
    rows += [Minute("f", T + m * MINUTE_MS, 96, 100) for m in range(20, 30)]
    chart = sli_chart(rows, T, T + 30 * MINUTE_MS, 0.99)
    assert chart is not None
    assert len(chart.per_bucket) == 2  # no events in minutes 10 to 19: a gap
    assert len(chart.cumulative) == 1  # the cumulative line carries on over the gap
    assert chart.points == 20 and chart.bucket_ms == MINUTE_MS
    for line in [*chart.per_bucket, *chart.cumulative]:
        for point in line.split():
            x, y = map(float, point.split(","))
            assert PAD_LEFT <= x <= WIDTH - PAD_RIGHT
            assert PAD_TOP <= y <= HEIGHT - PAD_BOTTOM
    assert PAD_TOP <= chart.target_y <= HEIGHT - PAD_BOTTOM
    # 50 bad of 2000 valid, 1 % allowed (20): overspent by 150 %
    assert chart.budget_left == pytest.approx(1 - 50 / 20)
    assert [label for _, label in chart.y_labels] == ["95 %", "97.5 %", "100 %"]
    assert [ms for _, ms in chart.x_labels] == [T, T + 15 * MINUTE_MS, T + 29 * MINUTE_MS]


def test_the_bottom_is_round_and_below_the_target() -> None:
    rows = [Minute("f", T, 9995, 10_000)]
    chart = sli_chart(rows, T, T + MINUTE_MS, 0.9999)
    assert chart is not None
    assert chart.y_labels[0][1] == "99.9 %"
    assert chart.budget_left == pytest.approx(1 - 5 / 1)
