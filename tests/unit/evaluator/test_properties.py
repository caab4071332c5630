"""Property tests against brute-force references that recompute from the raw event
list: burn-rate windows and budget (with out-of-order events, duplicates, late events
and gaps), deadline clocks in business time, freshness gaps. (Ratio threshold windows:
test_window.py; quantile: test_quantile.py.)"""

from __future__ import annotations

import itertools
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.business import BusinessClock
from services.evaluator.engine import Engine
from services.evaluator.objectives import compile_catalog
from services.evaluator.objectives.burnrate import BurnRateShard
from services.evaluator.objectives.deadline import CompiledDeadline
from services.evaluator.objectives.freshness import CompiledFreshness
from shared.definitions.model import CalendarSpec, DeadlineObjective, FreshnessObjective
from shared.definitions.store import Catalog
from shared.schemas import Breach, Event
from tests.unit.evaluator.factories import T0, agreement, event, fixed_clock

LATENESS = 30_000
MIN = 60_000

steps = st.lists(
    st.tuples(
        st.integers(min_value=-40_000, max_value=400_000),  # jitter and gaps
        st.booleans(),  # good
        st.integers(min_value=0, max_value=9),  # 0: repeat the previous id
    ),
    min_size=1,
    max_size=120,
)


@settings(max_examples=40, deadline=None)
@given(steps)
def test_burn_rate_windows_match_brute_force(stream: list[tuple[int, bool, int]]) -> None:
    doc = agreement(
        target=0.99,
        window="1d",
        alerting={
            "policy": "burn-rate",
            "burnRates": [
                {"severity": "page", "factor": 5, "long": "10m", "short": "1m"},
                {"severity": "ticket", "factor": 1, "long": "2h", "short": "10m"},
            ],
        },
    )
    engine = Engine(
        compile_catalog(Catalog({doc.metadata.name: doc}, {}), fixed_clock),
        allowed_lateness_ms=LATENESS,
    )
    engine.assign(0, None)
    accepted: list[tuple[int, bool]] = []
    seen: set[str] = set()
    newest: int | None = None
    cursor = T0
    last_id = "none"
    for n, (delta, good, dup) in enumerate(stream):
        cursor += max(delta, 0) // 7
        time = cursor + min(delta, 0)
        event_id = last_id if dup == 0 else f"e{n}"
        last_id = event_id
        engine.process(0, event(time, "good" if good else "bad", id=event_id))
        # Reference rules: late (older than newest - lateness) and repeated ids don't count.
        if newest is not None and time < newest - LATENESS:
            continue
        if event_id in seen:
            continue
        seen.add(event_id)
        newest = time if newest is None else max(newest, time)
        accepted.append((time, good))
    shard = engine._partitions[0].shards["acme-checkout/availability"]
    assert isinstance(shard, BurnRateShard)
    state = shard.groups[""]
    for window in [*state.windows.values(), state.budget]:
        assert isinstance(window.head, int)
        w, n, head = window.bucket_ms, window.size, window.head
        inside = [g for t, g in accepted if head - n < t // w <= head]
        assert (window.good, window.valid) == (sum(inside), len(inside))


OFFICE = CalendarSpec.model_validate(
    {
        "timezone": "Europe/Berlin",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
    }
)
MONDAY_0800 = 1_764_572_400_000  # 2025-12-01 08:00 Europe/Berlin


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=1, max_value=600), min_size=1, max_size=6),
    st.integers(min_value=1, max_value=240),
)
def test_deadline_matches_minute_by_minute_reference(gaps: list[int], target_min: int) -> None:
    """Start, then alternate pause/resume after each gap (minutes), then stop."""
    doc = agreement(
        name="desk",
        kind="deadline",
        service="desk",
        start=["open"],
        stop=["close"],
        pause=["pause"],
        resume=["resume"],
        target=f"{target_min}m",
        calendar="office",
        warnings=[0.5],
        good=None,
        window=None,
        select=None,
        alerting=None,
    )
    objective = doc.spec.objectives[0]
    assert isinstance(objective, DeadlineObjective)
    shard = CompiledDeadline(doc, objective, lambda: 0, OFFICE).new_shard()
    kinds = ["open"] + ["pause" if i % 2 == 0 else "resume" for i in range(len(gaps) - 1)]
    kinds.append("close")
    times = [MONDAY_0800]
    for gap in gaps:
        times.append(times[-1] + gap * MIN)
    out: list[Breach] = []
    for kind, at in zip(kinds, times, strict=True):
        out += shard.on_event(
            Event(id=f"{kind}{at}", service="desk", type=kind, time=at, entity="T")
        )

    # Reference: walk minute by minute.
    clock = BusinessClock(OFFICE)
    used = 0
    due: int | None = None
    running = True
    changes: dict[int, str] = dict(zip(times[1:], kinds[1:], strict=True))
    for minute in range(times[0], times[-1], MIN):
        if minute in changes:
            running = changes[minute] == "resume"
        if running and clock.elapsed(minute, minute + MIN) == MIN:
            used += 1
            if used == target_min and due is None:
                due = minute + MIN
    opened = [b.at for b in out if b.kind == "breach.opened"]
    breached = due is not None and due < times[-1]
    assert opened == ([due] if breached else [])
    resolved = [b for b in out if b.kind == "breach.resolved"]
    if breached:
        assert resolved[0].at == times[-1]
        window: Any = resolved[0].windows[0]
        assert window.good == used * MIN


@settings(max_examples=50, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=200_000), min_size=1, max_size=40))
def test_freshness_matches_gaps_between_events(gaps: list[int]) -> None:
    """In-order heartbeats (with repeats): a breach per gap longer than the silence,
    opened at last + silence and resolved by the next heartbeat."""
    doc = agreement(
        name="hb",
        kind="freshness",
        maxSilence="1m",
        good=None,
        target=None,
        window=None,
        alerting=None,
    )
    objective = doc.spec.objectives[0]
    assert isinstance(objective, FreshnessObjective)
    shard = CompiledFreshness(doc, objective, lambda: 0).new_shard()
    times = [T0]
    for gap in gaps:
        times.append(times[-1] + gap)
    out: list[Breach] = []
    for n, t in enumerate(times):
        out += shard.on_event(Event(id=f"h{n}", service="checkout", type="request", time=t))
    end = times[-1] + 30_000
    out += shard.advance(end)
    expected: list[tuple[str, int]] = []
    for before, after in itertools.pairwise(times):
        if after - before > MIN:
            expected += [("breach.opened", before + MIN), ("breach.resolved", after)]
    if end - times[-1] > MIN:
        expected.append(("breach.opened", times[-1] + MIN))
    assert [(b.kind, b.at) for b in out] == expected
