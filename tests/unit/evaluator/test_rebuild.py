"""Rebuilding windows from per-minute rollups (hot reload): the window math against
brute-force references, and the engine's reload that uses it."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator import rebuild
from services.evaluator.engine import Engine, Rollup
from services.evaluator.objectives import compile_catalog, rollup_fingerprint_of
from services.evaluator.objectives.base import CompiledObjective
from services.evaluator.window import SlidingWindow, bucket_width_ms
from shared.definitions.model import Agreement
from shared.definitions.store import Catalog
from shared.periods import period_bounds
from shared.schemas import breach_id
from tests.unit.evaluator.factories import T0, agreement, event, fixed_clock

MIN = 60_000
OID = "shop/availability"


def minutes_of(events: list[tuple[int, bool]]) -> list[rebuild.Minute]:
    """Per-minute rollup rows of raw events, as the shards write them."""
    rows: dict[int, list[int]] = {}
    for time, good in events:
        counts = rows.setdefault(time - time % MIN, [0, 0])
        counts[0] += good
        counts[1] += 1
    return [(m, g, v) for m, (g, v) in sorted(rows.items())]


events_st = st.lists(
    st.tuples(st.integers(min_value=0, max_value=4 * 3_600_000), st.booleans()),
    min_size=0,
    max_size=80,
)
# (window, max buckets): 1 s, 2 s, 66 s (not whole minutes), 2 min, 12 min, 1 day buckets.
shapes_st = st.sampled_from(
    [
        (300_000, 600),
        (1_200_000, 600),
        (39_600_000, 600),
        (3_600_000, 30),
        (21_600_000, 30),
        (2_592_000_000, 30),
    ]
)


@settings(max_examples=150, deadline=None)
@given(events_st, shapes_st, st.integers(min_value=0, max_value=2 * 3_600_000))
def test_window_holds_the_minutes_whose_start_lies_in_it(
    events: list[tuple[int, bool]], shape: tuple[int, int], after: int
) -> None:
    window_ms, most = shape
    times = [T0 + t for t, _ in events]
    clock = max(times, default=T0) + after
    data = rebuild.window_data(minutes_of([(T0 + t, g) for t, g in events]), window_ms, most, clock)

    width = bucket_width_ms(window_ms, most)
    size = -(-window_ms // width)
    head = clock // width
    expected: dict[int, list[int]] = {}
    for t, good in events:  # brute force: bucket of the event's minute start
        index = (T0 + t - (T0 + t) % MIN) // width
        if head - size <= index <= head:  # the counted buckets and the tail
            counts = expected.setdefault(index, [0, 0])
            counts[0] += good
            counts[1] += 1
    assert data == {
        "w": width,
        "n": size,
        "head": head,
        "b": [[i, g, v] for i, (g, v) in sorted(expected.items())],
    }
    loaded = SlidingWindow.from_dict(data, window_ms, max_buckets=most)  # it loads as is
    assert (loaded.good, loaded.valid) == (
        sum(g for i, g, _ in data["b"] if i > head - size),
        sum(v for i, _, v in data["b"] if i > head - size),
    )


@settings(max_examples=150, deadline=None)
@given(
    events_st,
    st.sampled_from([(3_600_000, 30), (21_600_000, 30), (2_592_000_000, 30), (600_000, 5)]),
    st.integers(min_value=0, max_value=3_600_000),
)
def test_whole_minute_buckets_rebuild_exactly_the_live_window(
    events: list[tuple[int, bool]], shape: tuple[int, int], after: int
) -> None:
    window_ms, most = shape
    assert bucket_width_ms(window_ms, most) % MIN == 0
    timed = sorted((T0 + t, g) for t, g in events)
    live = SlidingWindow(window_ms, max_buckets=most)
    for time, good in timed:
        live.add(time, good)
    clock = max((t for t, _ in timed), default=T0) + after
    live.advance(clock)
    rebuilt = rebuild.window_data(minutes_of(timed), window_ms, most, clock)
    if live.head is None:  # no event at all: the live window was never placed
        assert rebuilt["b"] == []
        return
    assert rebuilt == live.to_dict()


@settings(max_examples=100, deadline=None)
@given(events_st, st.sampled_from(["week", "month", "quarter"]))
def test_period_counts_the_minutes_since_the_period_start(
    events: list[tuple[int, bool]], period: Any
) -> None:
    timed = [(T0 + 40 * t, g) for t, g in events]  # up to a week: crosses period starts
    clock = max((t for t, _ in timed), default=T0)
    data = rebuild.period_data(minutes_of(timed), period, "Europe/Berlin", clock)
    start, end = period_bounds(clock, period, "Europe/Berlin")
    kept = [g for t, g in timed if start <= t]
    assert data == {"start": start, "end": end, "good": sum(kept), "valid": len(kept)}


def test_a_minute_counts_in_the_bucket_of_its_start() -> None:
    # 5m window of 1 s buckets: the minute 12:00 holds events at :10 and :50; both land
    # in the bucket of 12:00:00 (the documented approximation).
    minute = T0 - T0 % MIN
    data = rebuild.window_data([(minute, 1, 2)], 300_000, 600, minute + 90_000)
    assert data["b"] == [[minute // 1_000, 1, 2]]
    # A minute whose start bucket just left the window is its tail (kept for the
    # decision's trailing edge, not counted); one bucket later it is left out whole.
    tail = rebuild.window_data([(minute, 1, 2)], 300_000, 600, minute + 300_500)
    assert tail["b"] == [[minute // 1_000, 1, 2]]
    edge = rebuild.window_data([(minute, 1, 2)], 300_000, 600, minute + 301_000)
    assert edge["b"] == []


def test_history_span_covers_the_longest_window() -> None:
    threshold = compiled_one(agreement("shop", window="10m"))
    assert rebuild.history_span_ms(threshold) == 601_000  # and the 1 s tail bucket
    burn = compiled_one(agreement("shop", window="30d", alerting={"policy": "burn-rate"}))
    assert rebuild.history_span_ms(burn) == 31 * 86_400_000  # and the 1-day tail bucket
    calendar = compiled_one(agreement("shop", window="month", alerting={"policy": "burn-rate"}))
    assert rebuild.history_span_ms(calendar) == 31 * 86_400_000


# -- the engine ---------------------------------------------------------------------


def compiled(*docs: Agreement) -> list[CompiledObjective]:
    catalog = Catalog(agreements={d.metadata.name: d for d in docs}, receivers={})
    return list(compile_catalog(catalog, fixed_clock))


def compiled_one(doc: Agreement) -> Any:
    [objective] = compiled(doc)
    return objective


def run(evaluator: Engine, partition: int, outcomes: list[tuple[int, str, str]]) -> None:
    """Events (time offset, outcome, customer) into ``partition``."""
    for offset, outcome, customer in outcomes:
        evaluator.process(partition, event(T0 + offset, outcome, attributes={"customer": customer}))


def reload_with_rollups(
    evaluator: Engine, objectives: list[CompiledObjective], stored: list[Rollup]
) -> dict[str, str]:
    """What the consumer does: flush pending rollups, read the requested ones, reload."""
    for partition in evaluator.partitions:
        stored.extend(evaluator.take_rollups(partition))
    history: dict[str, list[Rollup]] = {}
    for request in evaluator.rebuild_requests(objectives):
        since = request.since_ms
        history[request.objective_id] = [
            r
            for r in stored
            if r.objective_id == request.objective_id
            and r.fingerprint == request.fingerprint
            and since is not None
            and r.minute >= since
        ]
    return evaluator.reload(objectives, history)


def groups_of(evaluator: Engine) -> dict[tuple[int, str], tuple[int, int]]:
    return {
        (s.partition, s.status.group.get("customer", "")): (s.status.good, s.status.valid)
        for s in evaluator.status(OID)
    }


def test_rollup_fingerprint_ignores_window_target_and_alerting_only() -> None:
    base = rollup_fingerprint_of(compiled_one(agreement("shop")))
    assert base
    for same in (
        {"window": "10m"},
        {"target": 0.99},
        {"alerting": {"policy": "burn-rate"}, "window": "30d"},
        {"window": "month", "timezone": "Europe/Berlin", "alerting": {"policy": "burn-rate"}},
    ):
        assert rollup_fingerprint_of(compiled_one(agreement("shop", **same))) == base, same
    for other in (
        {"select": {"type": "check"}},
        {"good": {"value": "<= 300"}},
        {"groupBy": ["customer"]},
        {"service": "cart"},
    ):
        assert rollup_fingerprint_of(compiled_one(agreement("shop", **other))) != base, other


def test_a_longer_window_is_rebuilt_from_rollups_and_decides_with_them() -> None:
    evaluator = Engine(compiled(agreement("shop", window="5m")), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    stored: list[Rollup] = []
    # 6 bad events at 0-5 s, then 10 good at 7 min: the 5m window lost the bad ones.
    run(evaluator, 0, [(i * 1_000, "bad", "") for i in range(6)])
    stored.extend(evaluator.take_rollups(0))  # a checkpoint in between
    run(evaluator, 0, [(420_000 + i * 1_000, "good", "") for i in range(10)])
    assert groups_of(evaluator) == {(0, ""): (10, 10)}

    changes = reload_with_rollups(evaluator, compiled(agreement("shop", window="10m")), stored)
    assert changes == {OID: "rebuilt"}
    assert groups_of(evaluator) == {(0, ""): (10, 16)}  # 10/16 < 0.9: breaching
    [status] = evaluator.status(OID)
    assert status.status.clock == T0 + 429_000 and status.status.active_breach_id is None

    # The next evaluation instant (a bucket boundary, reached by this event) judges the
    # rebuilt counts.
    opened = evaluator.process(0, event(T0 + 430_000, "good")).breaches
    assert [
        (b.kind, b.windows[0].window, b.windows[0].good, b.windows[0].valid) for b in opened
    ] == [("breach.opened", "10m", 10, 16)]
    assert opened[0].id == breach_id(OID, {}, "threshold", T0 + 430_000)


def test_threshold_to_burn_rate_is_rebuilt_into_every_window() -> None:
    burn = agreement("shop", window="7d", alerting={"policy": "burn-rate"})
    evaluator = Engine(compiled(agreement("shop", window="1h")), allowed_lateness_ms=30_000)
    live = Engine(compiled(burn), allowed_lateness_ms=30_000)  # burn-rate from the start
    for e in (evaluator, live):
        e.assign(0, None)
        run(e, 0, [(i * 30_000, "good" if i % 4 else "bad", "") for i in range(100)])
    assert reload_with_rollups(evaluator, compiled(burn), []) == {OID: "rebuilt"}

    def windows(e: Engine) -> dict[str, tuple[int, int]]:
        [status] = e.status(OID)
        return {w.window: (w.good, w.valid) for w in status.status.windows}

    rebuilt, expected = windows(evaluator), windows(live)
    # Whole-minute buckets (30m: 1 min, 1h: 2 min, 6h: 12 min, 3d: 144 min, 7d budget:
    # 336 min) are exact; the 5m window's 10-s buckets may take up to a minute early.
    assert {k: v for k, v in rebuilt.items() if k != "5m"} == {
        k: v for k, v in expected.items() if k != "5m"
    }
    assert 0 <= rebuilt["5m"][1] - expected["5m"][1] <= 2


def test_open_breach_is_carried_when_the_rule_stays_and_resolves_under_its_id() -> None:
    evaluator = Engine(compiled(agreement("shop", window="1m")), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    out = [
        b for i in range(6) for b in evaluator.process(0, event(T0 + 120_000 + i, "bad")).breaches
    ]
    [opened] = out
    # 60 good events two minutes earlier, from an earlier checkpoint: out of the 1m
    # window, inside the new 10m one.
    fingerprint = rollup_fingerprint_of(compiled_one(agreement("shop")))
    stored = [Rollup(OID, "", T0 - T0 % MIN, {}, 60, 60, fingerprint)]
    changes = reload_with_rollups(evaluator, compiled(agreement("shop", window="10m")), stored)
    assert changes == {OID: "rebuilt"}
    [status] = evaluator.status(OID)
    assert status.status.active_breach_id == opened.id  # carried: same rule
    assert (status.status.good, status.status.valid) == (60, 66)
    resolved = evaluator.process(0, event(T0 + 121_000, "good")).breaches  # 61/67 >= 0.9
    assert [(b.kind, b.id) for b in resolved] == [("breach.resolved", opened.id)]


def test_an_open_breach_is_not_carried_across_a_policy_change() -> None:
    evaluator = Engine(compiled(agreement("shop", window="1h")), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    assert evaluator.process(0, event(T0, "bad")).breaches
    burn = agreement("shop", window="7d", alerting={"policy": "burn-rate"})
    assert reload_with_rollups(evaluator, compiled(burn), []) == {OID: "rebuilt"}
    [status] = evaluator.status(OID)
    assert status.status.active_breach_id is None and status.status.valid == 1
    assert [b.kind for b in evaluator.take_resolutions()] == ["breach.resolved"]


def test_groups_are_rebuilt_in_the_partition_that_held_them() -> None:
    doc = agreement("shop", window="5m", groupBy=["customer"])
    evaluator = Engine(compiled(doc), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    evaluator.assign(1, None)
    run(evaluator, 0, [(i * 1_000, "good", "acme") for i in range(3)])
    run(evaluator, 1, [(i * 1_000, "bad", "globex") for i in range(2)])
    fingerprint = rollup_fingerprint_of(compiled_one(doc))
    # A group another instance owns: its rows are not rebuilt here.
    stored = [
        Rollup(OID, "customer=initech", T0 - T0 % MIN, {"customer": "initech"}, 5, 5, fingerprint)
    ]
    changed = agreement("shop", window="10m", groupBy=["customer"])
    assert reload_with_rollups(evaluator, compiled(changed), stored) == {OID: "rebuilt"}
    assert groups_of(evaluator) == {(0, "acme"): (3, 3), (1, "globex"): (0, 2)}


def test_rows_of_another_measurement_are_not_used() -> None:
    evaluator = Engine(compiled(agreement("shop", window="5m")), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    run(evaluator, 0, [(0, "good", "")])
    stale = Rollup(OID, "", T0 - T0 % MIN, {}, 0, 50, "another-fingerprint")
    reload_with_rollups(evaluator, compiled(agreement("shop", window="10m")), [stale])
    assert groups_of(evaluator) == {(0, ""): (1, 1)}


@pytest.mark.parametrize(
    ("before", "after", "expected"),
    [
        ({"window": "5m"}, {"window": "5m", "target": 0.99}, "carried"),
        ({"window": "5m"}, {"window": "10m"}, "rebuilt"),
        ({"window": "7d"}, {"window": "7d", "alerting": {"policy": "burn-rate"}}, "rebuilt"),
        (
            {"window": "30d", "alerting": {"policy": "burn-rate"}},
            {"window": "month", "alerting": {"policy": "burn-rate"}},
            "rebuilt",
        ),
        ({"window": "5m"}, {"window": "10m", "select": {"type": "check"}}, "restarted"),
        ({"window": "5m"}, {"window": "5m", "good": {"value": "<= 300"}}, "restarted"),
        (
            {"kind": "quantile", "quantile": 0.9, "threshold": 300, "good": None, "target": None},
            {
                "kind": "quantile",
                "quantile": 0.9,
                "threshold": 300,
                "good": None,
                "target": None,
                "window": "10m",
            },
            "restarted",
        ),
    ],
)
def test_what_a_change_does(before: dict[str, Any], after: dict[str, Any], expected: str) -> None:
    evaluator = Engine(compiled(agreement("shop", **before)), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    evaluator.process(0, event(T0, "good", value=100))
    assert reload_with_rollups(evaluator, compiled(agreement("shop", **after)), []) == {
        OID: expected
    }
    assert len(evaluator.status(OID)) == (0 if expected == "restarted" else 1)


def test_without_rollups_a_rebuildable_change_restarts() -> None:
    # The backtest has no database: reload() without history.
    evaluator = Engine(compiled(agreement("shop", window="5m")), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    evaluator.process(0, event(T0, "good"))
    assert evaluator.reload(compiled(agreement("shop", window="10m"))) == {OID: "restarted"}
    assert evaluator.status(OID) == []


def test_requests_name_the_fingerprint_and_the_oldest_minute_needed() -> None:
    evaluator = Engine(compiled(agreement("shop", window="5m")), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    evaluator.assign(1, None)
    assert evaluator.rebuild_requests(compiled(agreement("shop", window="10m")))[0].since_ms is None
    evaluator.process(0, event(T0 + 50_000, "good"))
    evaluator.process(1, event(T0 + 20_000, "good", service="checkout"))
    new = compiled(agreement("shop", window="10m"))
    [request] = evaluator.rebuild_requests(new)
    assert request.objective_id == OID
    assert request.fingerprint == evaluator.take_rollups(0)[0].fingerprint
    assert request.since_ms == T0 + 20_000 - 601_000  # the 10m window and its 1 s tail
    assert evaluator.rebuild_requests(compiled(agreement("shop", window="5m", target=0.5))) == []
