"""Event time per (partition, service), the future-skew bound, and the clamp of restored
snapshots (see services/evaluator/engine.py and state.py)."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.engine import Engine
from services.evaluator.objectives import compile_catalog
from services.evaluator.state import STATE_VERSION
from shared.definitions.model import Agreement
from shared.definitions.store import Catalog
from shared.schemas import Breach
from tests.unit.evaluator.factories import T0, agreement, event, fixed_clock

LATENESS = 30_000
SKEW = 300_000
NOW = T0  # the wall clock of these tests: live traffic is stamped around it
HOUR = 3_600_000


def bounded(*docs: Agreement, now: int = NOW, lateness: int = LATENESS) -> Engine:
    """An engine with the live evaluator's future bound, its clock fixed at ``now``."""
    catalog = Catalog(agreements={a.metadata.name: a for a in docs}, receivers={})
    return Engine(
        compile_catalog(catalog, fixed_clock),
        allowed_lateness_ms=lateness,
        clock=lambda: now,
        max_future_skew_ms=SKEW,
    )


def two_services() -> list[Agreement]:
    return [
        agreement("a-sla", service="svc-a", target=0.5, window="1m"),
        agreement("b-sla", service="svc-b", target=0.5, window="1m", alerting={"minEvents": 3}),
    ]


# B: in-order-ish traffic around the wall clock (disorder within B's own lateness and
# beyond it); A: anything from far behind to a year ahead, some within the skew.
b_steps = st.lists(st.tuples(st.integers(-45_000, 20_000), st.booleans()), min_size=1, max_size=60)
a_times = st.one_of(
    st.integers(-HOUR, SKEW),  # within the bound: accepted, A's own clock moves
    st.integers(SKEW + 1, 365 * 24 * HOUR),  # past it: refused as future
)
a_steps = st.lists(st.tuples(st.integers(0, 60), a_times), max_size=20)


def run_b(b: list[tuple[int, bool]], a: list[tuple[int, int]]) -> tuple[list[Any], list[str]]:
    """B's verdicts and breaches, with A's events inserted before B's n-th event."""
    engine = bounded(*two_services())
    engine.assign(0, None)
    inserts: dict[int, list[int]] = {}
    for at, offset in a:
        inserts.setdefault(at, []).append(offset)
    verdicts: list[Any] = []
    breaches: list[Breach] = []
    cursor = NOW - 240_000
    for n, (delta, good) in enumerate(b):
        for k, offset in enumerate(inserts.get(n, [])):
            engine.process(0, event(NOW + offset, "bad", service="svc-a", id=f"a{n}.{k}"))
            engine.tick(0)
        cursor += max(delta, 0)
        time = min(cursor + min(delta, 0), NOW + SKEW)
        result = engine.process(0, event(time, "good" if good else "bad", service="svc-b"))
        verdicts.append((result.late_by_ms, result.future_by_ms, result.duplicate))
        breaches += result.breaches
        breaches += engine.tick(0)
    ours = [f"{b.kind}:{b.id}:{b.at}" for b in breaches if b.service == "svc-b"]
    return verdicts, ours


@settings(max_examples=60, deadline=None)
@given(b_steps, a_steps)
def test_another_service_never_changes_what_a_service_sees(
    b: list[tuple[int, bool]], a: list[tuple[int, int]]
) -> None:
    """Whatever A stamps (a year ahead included), B's events are late, counted and
    breached exactly as if A had sent nothing."""
    assert run_b(b, a) == run_b(b, [])


def test_a_far_future_event_is_refused_and_moves_no_clock() -> None:
    engine = bounded(*two_services())
    engine.assign(0, None)
    engine.process(0, event(NOW, service="svc-b"))
    ahead = engine.process(0, event(NOW + HOUR, service="svc-a"))
    assert ahead.future_by_ms == HOUR - SKEW and not ahead.late and ahead.matched == 0
    assert engine.clocks(0) == {"svc-b": NOW}
    assert engine.watermark(0) == NOW - LATENESS
    body = orjson.loads(engine.snapshot(0))
    assert (body["v"], body["max_time"], body["clocks"]) == (STATE_VERSION, NOW, {"svc-b": NOW})
    # Exactly at the bound is still accepted; it moves only A's clock.
    assert engine.process(0, event(NOW + SKEW, service="svc-a")).future_by_ms is None
    assert not engine.process(0, event(NOW - 1_000, service="svc-b")).late
    assert engine.watermark(0, "svc-a") == NOW + SKEW - LATENESS


def test_the_bound_follows_the_clock() -> None:
    now = [NOW]
    catalog = Catalog(agreements={a.metadata.name: a for a in two_services()}, receivers={})
    engine = Engine(
        compile_catalog(catalog, fixed_clock),
        allowed_lateness_ms=LATENESS,
        clock=lambda: now[0],
        max_future_skew_ms=SKEW,
    )
    engine.assign(0, None)
    assert engine.process(0, event(NOW + SKEW + 1, service="svc-a")).future_by_ms == 1
    now[0] += 1
    assert engine.process(0, event(NOW + SKEW + 1, service="svc-a")).future_by_ms is None


def test_without_a_clock_nothing_is_future() -> None:
    """Backtests replay history against no wall clock."""
    engine = Engine(
        compile_catalog(
            Catalog(agreements={a.metadata.name: a for a in two_services()}, receivers={}),
            fixed_clock,
        ),
        allowed_lateness_ms=LATENESS,
    )
    engine.assign(0, None)
    assert engine.process(0, event(NOW + 365 * 24 * HOUR, service="svc-a")).future_by_ms is None


def test_a_service_far_behind_its_partition_is_late_past_the_dedup_horizon() -> None:
    """Behind the partition's newest event time by more than the dedup horizon, an id
    could no longer be recognised: such an event is late (not double counted)."""
    engine = bounded(*two_services())
    engine.assign(0, None)
    engine.process(0, event(NOW + SKEW, service="svc-a"))
    assert not engine.process(0, event(NOW - 290_000, service="svc-b")).late
    far = engine.process(0, event(NOW - 310_000, service="svc-b"))
    assert far.late_by_ms == 10_000


def snapshot_v1(max_time: int | None, objectives: dict[str, Any] | None = None) -> bytes:
    """A snapshot as written before event time was kept per service."""
    return orjson.dumps({"v": 1, "max_time": max_time, "objectives": objectives or {}})


def open_b_breach_state() -> dict[str, Any]:
    """The dump of svc-b's shard with an open breach, its clock at NOW."""
    engine = bounded(*two_services())
    engine.assign(0, None)
    for n in range(3):
        engine.process(0, event(NOW - 2_000 + n, "bad", service="svc-b", id=f"x{n}"))
    body = orjson.loads(engine.snapshot(0))
    shard: dict[str, Any] = body["objectives"]["b-sla/availability"]
    return shard


CLAMP_CASES = [
    # name, snapshot, expected max_time, expected clocks, B's event at NOW - 10 s late?
    ("v1 current", snapshot_v1(NOW - 5_000), NOW - 5_000, {}, False),
    ("v1 an hour ahead", snapshot_v1(NOW + HOUR), NOW + SKEW, {}, False),
    ("v1 a year ahead", snapshot_v1(NOW + 365 * 24 * HOUR), NOW + SKEW, {}, False),
    ("v1 empty", snapshot_v1(None), None, {}, False),
    (
        "v2 clocks ahead",
        orjson.dumps(
            {
                "v": 2,
                "max_time": NOW + HOUR,
                "clocks": {"svc-a": NOW + HOUR, "svc-b": NOW},
                "objectives": {},
            }
        ),
        NOW + SKEW,
        {"svc-a": NOW + SKEW, "svc-b": NOW},
        False,
    ),
    (
        "v2 own clock ahead",
        orjson.dumps(
            {"v": 2, "max_time": NOW + HOUR, "clocks": {"svc-b": NOW + HOUR}, "objectives": {}}
        ),
        NOW + SKEW,
        {"svc-b": NOW + SKEW},
        True,  # B's own clock at the bound: B's events 5 min behind it stay late
    ),
]


@pytest.mark.parametrize(
    ("snapshot", "max_time", "clocks", "late"),
    [case[1:] for case in CLAMP_CASES],
    ids=[case[0] for case in CLAMP_CASES],
)
def test_restored_event_time_is_clamped_to_now_plus_skew(
    snapshot: bytes, max_time: int | None, clocks: dict[str, int], late: bool
) -> None:
    engine = bounded(*two_services())
    engine.assign(0, snapshot)
    assert engine.watermark(0) == (None if max_time is None else max_time - LATENESS)
    assert engine.clocks(0) == clocks
    assert engine.process(0, event(NOW - 10_000, service="svc-b")).late is late


def test_a_shard_advanced_into_the_future_restarts_and_resolves() -> None:
    """A v1 snapshot whose partition watermark was poisoned: the shard ticked to it
    is restarted empty, its open breach resolved; the clean one is kept."""
    clean = open_b_breach_state()
    poisoned = dict(clean, groups=[dict(g, clock=NOW + HOUR) for g in clean["groups"]])
    for shard, kept in ((clean, True), (poisoned, False)):
        engine = bounded(*two_services())
        engine.assign(0, snapshot_v1(NOW + HOUR, {"b-sla/availability": shard}))
        held = [s.status.active_breach_id for s in engine.status("b-sla/availability")]
        resolved = engine.take_resolutions()
        if kept:
            assert held != [] and held[0] is not None and resolved == []
        else:
            assert held == [] and [b.kind for b in resolved] == ["breach.resolved"]


def test_a_current_v1_snapshot_restores_as_before() -> None:
    """No clamp, no restart: a snapshot with a sane watermark keeps every shard."""
    shard = open_b_breach_state()
    engine = bounded(*two_services())
    engine.assign(0, snapshot_v1(NOW, {"b-sla/availability": shard}))
    [status] = engine.status("b-sla/availability")
    assert status.status.active_breach_id is not None and status.status.valid == 3
    assert engine.take_resolutions() == []
    # B's clock starts from its next event; the open breach resolves on good traffic.
    out: list[Breach] = []
    for n in range(6):
        out += engine.process(0, event(NOW + 61_000 + n, service="svc-b")).breaches
    assert [b.kind for b in out] == ["breach.resolved"]
    assert engine.clocks(0) == {"svc-b": NOW + 61_005}


def test_idle_tick_moves_each_live_service_on_its_own() -> None:
    heartbeat = agreement(
        "hb",
        kind="freshness",
        service="svc-b",
        maxSilence="1m",
        good=None,
        target=None,
        window=None,
        alerting=None,
    )
    engine = bounded(heartbeat, *two_services())
    engine.assign(0, None)
    engine.process(0, event(NOW + SKEW, service="svc-a"))  # A at the bound
    engine.process(0, event(NOW, service="svc-b"))
    out = engine.tick(0, idle_now_ms=NOW + 120_000)
    assert [(b.kind, b.at, b.service) for b in out] == [("breach.opened", NOW + 60_000, "svc-b")]
    assert engine.clocks(0) == {"svc-a": NOW + SKEW, "svc-b": NOW + 120_000}
