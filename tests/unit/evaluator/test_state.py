"""Snapshots: versioned, round trip to identical results, tolerant of changed definitions."""

from __future__ import annotations

import orjson
import pytest

from services.evaluator.exceptions import StateFormatError
from shared.schemas import Breach
from tests.unit.evaluator.factories import T0, agreement, engine, event


def events(start: int, count: int) -> list[tuple[int, str]]:
    return [(T0 + (start + i) * 700, "bad" if i % 3 == 0 else "good") for i in range(count)]


def test_round_trip_gives_identical_results() -> None:
    doc = agreement(window="30s", groupBy=["customer"], target=0.8, alerting={"minEvents": 3})
    first_half, second_half = events(0, 40), events(40, 60)

    def feed(evaluator, stream) -> list[Breach]:  # type: ignore[no-untyped-def]
        out: list[Breach] = []
        for i, (time, outcome) in enumerate(stream):
            customer = "acme" if i % 2 else "globex"
            out += evaluator.process(
                0, event(time, outcome, attributes={"customer": customer}, id=f"e{time}")
            ).breaches
        return out

    straight = engine(doc)
    straight.assign(0, None)
    expected = feed(straight, first_half) + feed(straight, second_half)

    before = engine(doc)
    before.assign(0, None)
    got = feed(before, first_half)
    snapshot = before.snapshot(0)
    after = engine(doc)
    after.assign(0, snapshot)
    assert after.snapshot(0) == snapshot
    got += feed(after, second_half)

    def key(b: Breach) -> tuple[object, ...]:
        return (b.id, b.kind, b.at, b.windows, b.group)

    assert [key(b) for b in got] == [key(b) for b in expected]
    assert len(expected) >= 2
    assert after.snapshot(0) == straight.snapshot(0)


def test_unknown_version_is_an_error() -> None:
    evaluator = engine(agreement())
    with pytest.raises(StateFormatError, match="version"):
        evaluator.assign(0, orjson.dumps({"v": 99, "objectives": {}}))
    with pytest.raises(StateFormatError, match="JSON"):
        evaluator.assign(0, b"\x00not json")


def test_removed_or_reshaped_objectives_restart_empty() -> None:
    old = engine(agreement(window="1m"), agreement("gone"))
    old.assign(0, None)
    old.process(0, event(T0, "bad"))
    snapshot = old.snapshot(0)
    assert set(orjson.loads(snapshot)["objectives"]) == {
        "acme-checkout/availability",
        "gone/availability",
    }

    same = engine(agreement(window="1m"))
    same.assign(0, snapshot)
    assert [s.status.valid for s in same.status("acme-checkout/availability")] == [1]
    assert set(orjson.loads(same.snapshot(0))["objectives"]) == {"acme-checkout/availability"}

    reshaped = engine(agreement(window="2h"))
    reshaped.assign(0, snapshot)
    assert reshaped.status("acme-checkout/availability") == []


def test_restored_under_a_changed_measurement_restarts_and_resolves_its_breaches() -> None:
    """A crash between a hot reload and the checkpoint after it (or a restart with other
    definitions) restores state taken under the old definition: the reload's plan is
    applied again, so old counts never stand under a new selection."""
    old = engine(agreement())
    old.assign(0, None)
    [opened] = old.process(0, event(T0, "bad")).breaches
    snapshot = old.snapshot(0)

    other_rule = engine(agreement(good={"value": "<= 300"}))
    other_rule.assign(0, snapshot)
    assert other_rule.status("acme-checkout/availability") == []
    [resolved] = other_rule.take_resolutions()
    assert (resolved.kind, resolved.id) == ("breach.resolved", opened.id)

    tighter = engine(agreement(target=0.5))  # same measurement: carried, breach kept
    tighter.assign(0, snapshot)
    [status] = tighter.status("acme-checkout/availability")
    assert status.status.active_breach_id == opened.id
    assert tighter.take_resolutions() == []
