"""The ratio objective: selection, classification, grouping and the alerting table."""

from __future__ import annotations

from typing import Any

import pytest

from services.evaluator.objectives.ratio import MISSING, RULE, RatioShard
from shared.schemas import Breach, breach_id
from tests.unit.evaluator.factories import DETECTED_AT, T0, compiled, event

S = 1_000

Step = tuple[Any, ...]


def run(shard: RatioShard, steps: list[Step]) -> list[tuple[str, int]]:
    """Steps: ("good"|"bad", t) for an event, ("tick", t) to let time pass."""
    out: list[Breach] = []
    for kind, t in steps:
        if kind == "tick":
            out.extend(shard.advance(T0 + t))
        else:
            out.extend(shard.on_event(event(T0 + t, kind)))
    return [(b.kind, b.at - T0) for b in out]


def bads(*seconds: int) -> list[Step]:
    return [("bad", s * S) for s in seconds]


CASES: list[tuple[str, dict[str, Any], list[Step], list[tuple[str, int]]]] = [
    ("opens at once with for=0", {}, bads(1), [("breach.opened", 1 * S)]),
    (
        "minEvents holds the breach back",
        {"alerting": {"minEvents": 3}},
        bads(1, 2, 3),
        [("breach.opened", 3 * S)],
    ),
    (
        "SLI at target is not a breach",
        {"target": 0.5},
        [("good", 1 * S), ("bad", 2 * S)],
        [],
    ),
    (
        "for: opens when the period ends on a later event",
        {"alerting": {"for": "10s"}},
        bads(1, 5, 12),
        [("breach.opened", 11 * S)],
    ),
    (
        "for: the deadline fires on a tick, at the exact time",
        {"alerting": {"for": "10s"}},
        [*bads(1), ("tick", 30 * S)],
        [("breach.opened", 11 * S)],
    ),
    (
        "for: an interruption restarts the period",
        {"alerting": {"for": "10s"}, "target": 0.5},
        # bad@1 → pending; good@5,6 → 2/3 ok; bad@8,9 → 2/5 pending from 9
        [("bad", 1 * S), ("good", 5 * S), ("good", 6 * S), *bads(8, 9), ("tick", 30 * S)],
        [("breach.opened", 19 * S)],
    ),
    (
        "resolves when the SLI is back at target",
        {"target": 0.5},
        [("bad", 1 * S), ("good", 2 * S)],
        [("breach.opened", 1 * S), ("breach.resolved", 2 * S)],
    ),
    (
        "hysteresis: at target is not enough",
        {"target": 0.5, "alerting": {"hysteresis": 0.2}},
        # 1/2 = 0.5 stays open; 2/3 < 0.7 stays open; 3/4 = 0.75 resolves
        [("bad", 1 * S), ("good", 2 * S), ("good", 3 * S), ("good", 4 * S)],
        [("breach.opened", 1 * S), ("breach.resolved", 4 * S)],
    ),
    (
        "expiry of the bad events resolves, at the bucket boundary",
        {"window": "10s"},
        # bad@1.5s leaves at 11 s (bucket 1 expires when bucket 11 starts)
        [("bad", 1_500), ("good", 5 * S), ("tick", 20 * S)],
        [("breach.opened", 1_500), ("breach.resolved", 11 * S)],
    ),
    (
        "stays open below minEvents until the window empties",
        {"window": "10s", "alerting": {"minEvents": 2}},
        # bad@1, bad@5 → open; bad@1 expires at 11 (1 event left, < minEvents: stays);
        # bad@5 expires at 15 → window empty → resolved
        [*bads(1, 5), ("tick", 30 * S)],
        [("breach.opened", 5 * S), ("breach.resolved", 15 * S)],
    ),
    (
        "reopens later with a new opening time",
        {"target": 0.5, "window": "10s"},
        [("bad", 1 * S), ("good", 2 * S), ("bad", 3 * S)],
        [("breach.opened", 1 * S), ("breach.resolved", 2 * S), ("breach.opened", 3 * S)],
    ),
    (
        "never reopens at the instant it resolved",
        {"target": 0.5},
        [("bad", 1 * S), ("good", 2 * S), ("bad", 2 * S), ("bad", 2 * S + 1)],
        [("breach.opened", 1 * S), ("breach.resolved", 2 * S), ("breach.opened", 2 * S + 1)],
    ),
    (
        "an out-of-order event is stamped with the group's clock",
        {"target": 0.5},
        [("good", 5 * S), ("bad", 2 * S), ("bad", 3 * S)],
        [("breach.opened", 5 * S)],
    ),
]


@pytest.mark.parametrize(
    ("objective", "steps", "expected"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_threshold_alerting(
    objective: dict[str, Any], steps: list[Step], expected: list[tuple[str, int]]
) -> None:
    assert run(compiled(**objective).new_shard(), steps) == expected


def test_breach_fields() -> None:
    objective = compiled(groupBy=["customer"], target=0.9, alerting={"severity": "ticket"})
    shard = objective.new_shard()
    trigger = event(T0 + 1_000, "bad", attributes={"customer": "acme"}, id="trigger-1")
    [opened] = shard.on_event(trigger)
    group = {"customer": "acme"}
    assert opened.id == breach_id("acme-checkout/availability", group, RULE, T0 + 1_000)
    assert opened.model_dump(exclude={"id", "windows", "burn_rates", "agreement"}) == {
        "schema_version": 1,
        "kind": "breach.opened",
        "at": T0 + 1_000,
        "objective": "availability",
        "objective_id": "acme-checkout/availability",
        "service": "checkout",
        "group": group,
        "rule": "threshold",
        "severity": "ticket",
        "error_budget_remaining": pytest.approx(-9.0),
        "opened_at": T0 + 1_000,
        "resolved_at": None,
        "detected_at": DETECTED_AT,
        "trigger_event_id": "trigger-1",
        "trigger_received_at": T0 + 1_005,
        "labels": {"team": "payments"},
    }
    assert opened.agreement.model_dump() == {
        "name": "acme-checkout",
        "type": "SLA",
        "provider": "shopco",
        "consumer": "acme",
    }
    [window] = opened.windows
    assert (window.window, window.sli, window.target, window.good, window.valid) == (
        "1m",
        0.0,
        0.9,
        0,
        1,
    )
    assert opened.burn_rates == {"1m": pytest.approx(10.0)}
    for i in range(8):
        shard.on_event(event(T0 + 2_000 + i, "good", attributes={"customer": "acme"}))
    [resolved] = shard.on_event(event(T0 + 3_000, "good", attributes={"customer": "acme"}))
    assert (resolved.id, resolved.kind, resolved.opened_at) == (
        opened.id,
        "breach.resolved",
        T0 + 1_000,
    )
    assert resolved.resolved_at == resolved.at == T0 + 3_000
    assert (resolved.windows[0].good, resolved.windows[0].valid) == (9, 10)


def test_selection_and_classification() -> None:
    objective = compiled(select={"types": ["request", "check"], "attributes": {"region": "eu"}})
    eu = {"region": "eu"}
    assert objective.matches(event(T0, attributes=eu))
    assert objective.matches(event(T0, type="check", attributes=eu))
    assert not objective.matches(event(T0, type="heartbeat", attributes=eu))
    assert not objective.matches(event(T0, attributes={"region": "us"}))
    assert not objective.matches(event(T0))
    assert not objective.matches(event(T0, service="search", attributes=eu))
    assert objective.classify(event(T0, "good")) is True
    assert objective.classify(event(T0, "bad")) is False
    assert objective.classify(event(T0, None)) is None


def test_value_condition() -> None:
    objective = compiled(good={"value": "<= 300"})
    assert objective.classify(event(T0, None, value=300)) is True
    assert objective.classify(event(T0, "good", value=301)) is False
    assert objective.classify(event(T0, "good")) is None


def test_events_without_the_needed_field_are_not_counted() -> None:
    shard = compiled().new_shard()
    assert shard.on_event(event(T0, None)) == []
    assert shard.status() == []


def test_groups_and_missing_attribute() -> None:
    objective = compiled(groupBy=["customer", "region"])
    shard = objective.new_shard()
    shard.on_event(event(T0, "good", attributes={"customer": "acme", "region": "eu"}))
    shard.on_event(event(T0, "good", attributes={"customer": "acme", "region": "eu"}))
    shard.on_event(event(T0, "bad", attributes={"region": "eu"}))
    by_group = {tuple(sorted(s.group.items())): (s.good, s.valid) for s in shard.status()}
    assert by_group == {
        (("customer", "acme"), ("region", "eu")): (2, 2),
        (("customer", MISSING), ("region", "eu")): (0, 1),
    }
    assert shard.open_breaches() == 1


def test_replay_gives_the_same_ids() -> None:
    steps = [("bad", 1 * S), ("good", 2 * S), ("bad", 3 * S), ("bad", 4 * S), ("tick", 90 * S)]

    def ids() -> list[tuple[str, str, int]]:
        shard = compiled(target=0.5).new_shard()
        out: list[Breach] = []
        for kind, t in steps:
            out += shard.advance(T0 + t) if kind == "tick" else shard.on_event(event(T0 + t, kind))
        return [(b.id, b.kind, b.at) for b in out]

    first = ids()
    assert [kind for _, kind, _ in first] == [
        "breach.opened",
        "breach.resolved",
        "breach.opened",
        "breach.resolved",
    ]
    assert ids() == first
