"""The engine: routing, watermark and late events, ticks, partitions."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.engine import Engine
from shared.schemas import Breach
from tests.unit.evaluator.factories import T0, agreement, engine, event


def two_objectives() -> Engine:
    return engine(
        agreement("acme-checkout", target=0.9),
        agreement("acme-search", service="search", target=0.5, alerting={"minEvents": 2}),
        allowed_lateness_ms=10_000,
    )


def test_routes_by_service_and_selection() -> None:
    evaluator = two_objectives()
    evaluator.assign(0, None)
    assert evaluator.process(0, event(T0, "bad")).matched == 1
    assert evaluator.process(0, event(T0, service="search")).matched == 1
    assert evaluator.process(0, event(T0, service="cart")).matched == 0
    assert evaluator.process(0, event(T0, type="heartbeat")).matched == 0
    [checkout] = evaluator.status("acme-checkout/availability")
    assert (checkout.partition, checkout.status.good, checkout.status.valid) == (0, 0, 1)
    assert evaluator.open_breaches() == {
        "acme-checkout/availability": 1,
        "acme-search/availability": 0,
    }


def test_late_events_are_refused_and_counted_nowhere() -> None:
    evaluator = two_objectives()
    evaluator.assign(3, None)
    evaluator.process(3, event(T0 + 60_000))
    assert evaluator.watermark(3) == T0 + 50_000
    exactly_at_watermark = evaluator.process(3, event(T0 + 50_000))
    assert not exactly_at_watermark.late
    late = evaluator.process(3, event(T0 + 49_000, "bad"))
    assert late.late and late.late_by_ms == 1_000 and late.breaches == []
    [status] = evaluator.status("acme-checkout/availability")
    assert (status.status.good, status.status.valid) == (2, 2)
    assert evaluator.watermark(3) == T0 + 50_000


def test_partitions_are_independent() -> None:
    evaluator = two_objectives()
    evaluator.assign(0, None)
    evaluator.assign(1, None)
    evaluator.process(0, event(T0 + 100_000))
    assert not evaluator.process(1, event(T0)).late
    assert evaluator.partitions == [0, 1]
    evaluator.revoke(0)
    assert evaluator.partitions == [1] and not evaluator.owns(0)


def test_tick_advances_quiet_groups_to_the_watermark() -> None:
    evaluator = engine(
        agreement(window="10s", groupBy=["customer"], target=0.5), allowed_lateness_ms=5_000
    )
    evaluator.assign(0, None)
    [opened] = evaluator.process(0, event(T0, "bad", attributes={"customer": "a"})).breaches
    evaluator.process(0, event(T0 + 30_000, "good", attributes={"customer": "b"}))
    [resolved] = evaluator.tick(0)  # watermark T0 + 25 s; a's bad event left at T0 + 10 s
    assert (resolved.id, resolved.kind, resolved.at) == (opened.id, "breach.resolved", T0 + 10_000)
    assert resolved.trigger_event_id is None
    assert evaluator.tick(0) == []


def test_duplicate_objective_ids_are_refused() -> None:
    doc = agreement()
    with pytest.raises(ValueError, match="duplicate"):
        Engine(
            [*engine(doc).objectives.values(), *engine(doc).objectives.values()],
            allowed_lateness_ms=0,
        )


Record = tuple[int, int, bool, str]  # partition, time offset, good, customer

records = st.lists(
    st.tuples(
        st.integers(0, 1),
        st.integers(0, 120_000),
        st.booleans(),
        st.sampled_from(["a", "b", "c"]),
    ),
    max_size=80,
)


def evaluate(stream: list[Record], tick_after: set[int], snapshot_after: set[int]) -> list[str]:
    """Run a stream through a fresh engine; ticks and snapshot/restore at given indexes."""

    def build() -> Engine:
        built = engine(
            agreement(
                window="20s",
                groupBy=["customer"],
                target=0.7,
                alerting={"for": "3s", "minEvents": 2, "hysteresis": 0.1},
            ),
            allowed_lateness_ms=15_000,
        )
        return built

    evaluator = build()
    for p in (0, 1):
        evaluator.assign(p, None)
    out: list[Breach] = []
    # Times grow by a drift so the stream moves forward, with disorder inside lateness.
    for index, (partition, offset, good, customer) in enumerate(stream):
        time = T0 + index * 2_000 + offset // 4
        result = evaluator.process(
            partition, event(time, "good" if good else "bad", attributes={"customer": customer})
        )
        out.extend(result.breaches)
        if index in tick_after:
            out.extend(evaluator.tick(partition))
        if index in snapshot_after:
            snapshots = {p: evaluator.snapshot(p) for p in evaluator.partitions}
            evaluator = build()
            for p, data in snapshots.items():
                evaluator.assign(p, data)
    for p in evaluator.partitions:
        out.extend(evaluator.tick(p))
    final = [
        f"{s.partition}:{sorted(s.status.group.items())}:{s.status.good}/{s.status.valid}"
        for s in evaluator.status("acme-checkout/availability")
    ]
    return sorted(f"{b.id}:{b.kind}:{b.at}" for b in out) + sorted(final)


@settings(max_examples=150, deadline=None)
@given(stream=records, ticks=st.sets(st.integers(0, 80)), snaps=st.sets(st.integers(0, 80)))
def test_ticks_and_restores_do_not_change_results(
    stream: list[Record], ticks: set[int], snaps: set[int]
) -> None:
    assert evaluate(stream, ticks, snaps) == evaluate(stream, set(), set())


def test_duplicates_counted_once_within_the_horizon() -> None:
    evaluator = engine(agreement(), dedup_horizon_ms=600_000)
    evaluator.assign(0, None)
    assert not evaluator.process(0, event(T0, "bad", id="x")).duplicate
    repeat = evaluator.process(0, event(T0, "bad", id="x"))
    assert repeat.duplicate and repeat.matched == 0
    # Restored from a snapshot, the id is still known.
    snapshot = evaluator.snapshot(0)
    dedup = evaluator.dedup_delta(0).new
    evaluator.revoke(0)
    evaluator.assign(0, snapshot, dedup)
    assert evaluator.process(0, event(T0 + 1, "bad", id="x")).duplicate
    # Past the horizon (and not late), the id is forgotten.
    lax = engine(agreement(), allowed_lateness_ms=10**9, dedup_horizon_ms=600_000)
    lax.assign(0, None)
    lax.process(0, event(T0, id="y"))
    lax.process(0, event(T0 + 600_001, id="z"))
    assert not lax.process(0, event(T0, id="y")).duplicate


def test_groups_past_the_cap_fold_into_the_overflow_group() -> None:
    from services.evaluator.objectives.base import OVERFLOW

    evaluator = engine(agreement(groupBy=["customer"]))
    objective = next(iter(evaluator.objectives.values()))
    objective.max_groups = 2  # type: ignore[attr-defined]
    evaluator.assign(0, None)
    for customer in ("a", "b", "c", "d", "a"):
        evaluator.process(0, event(T0, attributes={"customer": customer}))
    groups = sorted(s.status.group["customer"] for s in evaluator.status(objective.objective_id))
    assert groups == [OVERFLOW, "a", "b"]
    assert evaluator.take_overflow() == {objective.objective_id: 2}
    assert evaluator.take_overflow() == {}


def test_idle_tick_moves_a_live_partition_by_the_wall_clock_only() -> None:
    doc = agreement(
        name="hb",
        kind="freshness",
        maxSilence="1m",
        good=None,
        target=None,
        window=None,
        alerting=None,
    )
    evaluator = engine(doc, allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    evaluator.process(0, event(T0, None))
    # Far behind the wall clock (historical data): the wall clock does not move it.
    assert evaluator.tick(0, idle_now_ms=T0 + 10 * 86_400_000) == []
    assert evaluator.watermark(0) == T0 - 30_000
    # Live: the silence is noticed without a further event, stamped at its due time.
    out = evaluator.tick(0, idle_now_ms=T0 + 120_000)
    assert [(b.kind, b.at) for b in out] == [("breach.opened", T0 + 60_000)]
    assert evaluator.watermark(0) == T0 + 90_000


def test_fast_decode_agrees_with_the_schema() -> None:
    import pytest

    from services.evaluator.fastevent import InvalidEvent, decode

    e = event(T0, "bad", value=12, attributes={"customer": "acme"})
    fast = decode(e.to_json())
    for name in ("id", "service", "type", "time", "outcome", "value", "attributes", "received_at"):
        assert getattr(fast, name) == getattr(e, name)
    assert decode(b'{"id":"x","service":"s","type":"t","time":"2023-11-14T22:13:20Z"}').time == T0
    for bad in (b"nope", b"[]", b'{"id":"x","service":"s","type":"t"}', b'{"id":1}'):
        with pytest.raises(InvalidEvent):
            decode(bad)


def test_reload_keeps_unchanged_objectives_and_restarts_changed_ones() -> None:
    from services.evaluator.objectives import compile_catalog
    from shared.definitions.store import Catalog
    from tests.unit.evaluator.factories import fixed_clock

    def compiled(*docs: Any) -> list[Any]:
        catalog = Catalog(agreements={d.metadata.name: d for d in docs}, receivers={})
        return list(compile_catalog(catalog, fixed_clock))

    a, b = agreement("alpha"), agreement("beta")
    evaluator = Engine(compiled(a, b), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    evaluator.process(0, event(T0, "bad"))
    changes = evaluator.reload(
        compiled(a, agreement("beta", good={"value": "<= 300"}), agreement("gamma"))
    )
    assert changes == {
        "alpha/availability": "kept",
        "beta/availability": "restarted",
        "gamma/availability": "added",
    }
    assert [s.status.valid for s in evaluator.status("alpha/availability")] == [1]
    assert evaluator.status("beta/availability") == []
    assert evaluator.reload(compiled(a)) == {
        "alpha/availability": "kept",
        "beta/availability": "removed",
        "gamma/availability": "removed",
    }


def test_reload_carries_counts_over_a_target_change_and_decides_with_the_new_target() -> None:
    from services.evaluator.objectives import compile_catalog
    from shared.definitions.store import Catalog
    from tests.unit.evaluator.factories import fixed_clock

    def compiled(doc: Any) -> list[Any]:
        return list(compile_catalog(Catalog(agreements={"shop": doc}, receivers={}), fixed_clock))

    evaluator = Engine(compiled(agreement("shop", target=0.9)), allowed_lateness_ms=30_000)
    evaluator.assign(0, None)
    outcomes = ["good"] * 18 + ["bad"] * 2  # SLI 0.9: meets 0.9, misses 0.95
    for i, outcome in enumerate(outcomes):
        assert evaluator.process(0, event(T0 + i, outcome)).breaches == []

    tighter = compiled(agreement("shop", target=0.95, alerting={"minEvents": 5}))
    assert evaluator.reload(tighter) == {"shop/availability": "carried"}
    [status] = evaluator.status("shop/availability")
    assert (status.status.good, status.status.valid) == (18, 20)

    opened = evaluator.process(0, event(T0 + 20, "good")).breaches  # 19/21 < 0.95
    assert [(b.kind, b.windows[0].target, b.windows[0].valid) for b in opened] == [
        ("breach.opened", 0.95, 21)
    ]
    looser = compiled(agreement("shop", target=0.5, alerting={"minEvents": 5}))
    assert evaluator.reload(looser) == {"shop/availability": "carried"}
    resolved = evaluator.process(0, event(T0 + 21, "good")).breaches
    assert [(b.kind, b.id) for b in resolved] == [("breach.resolved", opened[0].id)]
    assert evaluator.take_resolutions() == []  # carried: the breach lived on


def test_a_reload_that_withdraws_a_rule_resolves_its_open_breaches() -> None:
    from services.evaluator.objectives import compile_catalog
    from shared.definitions.store import Catalog
    from tests.unit.evaluator.factories import fixed_clock

    def compiled(*docs: Any) -> list[Any]:
        catalog = Catalog(agreements={d.metadata.name: d for d in docs}, receivers={})
        return list(compile_catalog(catalog, fixed_clock))

    def breaching() -> tuple[Engine, str]:
        evaluator = Engine(compiled(agreement("shop")), allowed_lateness_ms=30_000)
        evaluator.assign(0, None)
        [opened] = evaluator.process(0, event(T0, "bad")).breaches
        evaluator.process(0, event(T0 + 5, "bad"))
        return evaluator, opened.id

    # Another selection: the rule that opened it is gone; resolved at the group's clock.
    evaluator, breach_id = breaching()
    assert evaluator.reload(compiled(agreement("shop", good={"value": "<= 300"}))) == {
        "shop/availability": "restarted"
    }
    [resolved] = evaluator.take_resolutions()
    assert (resolved.kind, resolved.id, resolved.at, resolved.resolved_at) == (
        "breach.resolved",
        breach_id,
        T0 + 5,
        T0 + 5,
    )
    assert evaluator.take_resolutions() == []
    # The objective removed: the same.
    evaluator, breach_id = breaching()
    assert evaluator.reload(compiled(agreement("other"))) == {
        "shop/availability": "removed",
        "other/availability": "added",
    }
    assert [(b.kind, b.id) for b in evaluator.take_resolutions()] == [
        ("breach.resolved", breach_id)
    ]
    # Unchanged: nothing to resolve.
    evaluator, _ = breaching()
    evaluator.reload(compiled(agreement("shop")))
    assert evaluator.take_resolutions() == []
