"""The dedup set: ids held at least the horizon, stored incrementally in slices."""

from __future__ import annotations

import orjson
from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.state import SLICES_PER_HORIZON, PartitionState, SeenIds, decode, encode
from tests.unit.evaluator.factories import agreement, engine, event

T0 = 1_700_000_000_000
HORIZON = 60_000
SLICE_MS = HORIZON // SLICES_PER_HORIZON


def feed(seen: SeenIds, newest: int | None, time: int, event_id: str) -> int | None:
    """What the engine does for an accepted, new id (without the inlined shortcuts)."""
    if newest is None or time > newest:
        seen.newest(time, newest, HORIZON)
        newest = time
    seen.add(event_id)
    return newest


@settings(max_examples=60, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 40_000), st.integers(0, 30)), min_size=1, max_size=80))
def test_ids_are_held_at_least_the_horizon(steps: list[tuple[int, int]]) -> None:
    """Reference: an id is known while its event time is within the horizon of the
    newest event time; the slices may hold it longer, never shorter."""
    seen = SeenIds()
    newest: int | None = None
    times: dict[str, int] = {}
    cursor = T0
    for n, (gap, back) in enumerate(steps):
        cursor += gap
        time = cursor - back * 1_000
        newest = feed(seen, newest, time, f"e{n}")
        times[f"e{n}"] = time
        assert newest is not None
        for event_id, at in times.items():
            if at >= newest - HORIZON:
                assert event_id in seen


def test_a_slice_expires_whole_once_its_bound_is_past_the_horizon() -> None:
    seen = SeenIds()
    newest = feed(seen, None, T0, "a")
    newest = feed(seen, newest, T0 + SLICE_MS, "b")  # seals the slice holding "a"
    newest = feed(seen, newest, T0 + HORIZON, "c")
    assert "a" in seen  # bound T0 is not yet behind T0 + HORIZON - HORIZON
    feed(seen, newest, T0 + HORIZON + 1, "d")
    assert "a" not in seen and "b" in seen


def test_checkpoints_store_each_slice_once_and_restore_them() -> None:
    evaluator = engine(agreement(), dedup_horizon_ms=HORIZON)
    evaluator.assign(0, None)
    stored: list[tuple[int, list[str]]] = []
    for n in range(30):
        evaluator.process(0, event(T0 + n * 1_000, id=f"e{n}"))
        if n % 7 == 6:
            delta = evaluator.dedup_delta(0)
            stored += delta.new
            delta.stored()
    delta = evaluator.dedup_delta(0)
    stored += delta.new
    delta.stored()
    ids = [i for _, piece in stored for i in piece]
    assert sorted(ids) == sorted(f"e{n}" for n in range(30))  # each exactly once
    assert evaluator.dedup_delta(0).new == []
    restored = engine(agreement(), dedup_horizon_ms=HORIZON)
    restored.assign(0, evaluator.snapshot(0), stored)
    assert restored.process(0, event(T0 + 29_000, id="e3")).duplicate
    assert not restored.process(0, event(T0 + 29_000, id="new")).duplicate


def test_a_failed_checkpoint_writes_its_slices_with_the_next() -> None:
    evaluator = engine(agreement(), dedup_horizon_ms=HORIZON)
    evaluator.assign(0, None)
    evaluator.process(0, event(T0, id="x"))
    first = evaluator.dedup_delta(0)  # the save fails: never marked stored
    evaluator.process(0, event(T0 + 1, id="y"))
    second = evaluator.dedup_delta(0)
    assert first.new == [(T0, ["x"])]
    assert second.new == [(T0, ["x"]), (T0 + 1, ["y"])]


def test_expired_slices_are_named_for_deletion() -> None:
    evaluator = engine(agreement(), dedup_horizon_ms=HORIZON)
    evaluator.assign(0, None)
    evaluator.process(0, event(T0 + 5 * HORIZON, id="x"))
    assert evaluator.dedup_delta(0).expired_below == T0 + 4 * HORIZON


def test_a_snapshot_holds_no_ids_and_an_old_one_with_ids_still_loads() -> None:
    state = PartitionState(max_time=T0)
    state.seen.add("x")
    assert b"seen" not in encode(state, {})
    legacy = orjson.dumps({"v": 1, "max_time": T0, "seen": [[T0, "x"]], "objectives": {}})
    assert "x" in decode(legacy, {}).seen


def test_ids_of_an_old_snapshot_are_written_with_the_first_checkpoint() -> None:
    evaluator = engine(agreement(), dedup_horizon_ms=HORIZON)
    legacy = orjson.dumps({"v": 1, "max_time": T0, "seen": [[T0, "x"]], "objectives": {}})
    evaluator.assign(0, legacy)
    evaluator.process(0, event(T0 + 1, id="y"))
    delta = evaluator.dedup_delta(0)
    assert [ids for _, ids in delta.new] == [["x"], ["y"]]
    delta.stored()
    restored = engine(agreement(), dedup_horizon_ms=HORIZON)
    restored.assign(0, evaluator.snapshot(0), delta.new)
    assert restored.process(0, event(T0, id="x")).duplicate
