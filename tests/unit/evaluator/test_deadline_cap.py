"""The deadline objective's bounds: open clocks per group (refused starts) and groups
(folded into the overflow group); both survive a snapshot round trip unchanged."""

from __future__ import annotations

from typing import Any

import pytest

from services.evaluator.objectives.base import OVERFLOW
from services.evaluator.objectives.deadline import (
    CompiledDeadline,
    DeadlineShard,
    take_refused,
)
from shared.definitions.model import DeadlineObjective
from shared.schemas import Breach, Event
from tests.unit.evaluator.factories import agreement

MIN = 60_000
T0 = 1_795_000_000_000


def compiled(
    max_open_entities: int = 2, max_groups: int = 10, **overrides: Any
) -> CompiledDeadline:
    spec: dict[str, Any] = {
        "kind": "deadline",
        "service": "desk",
        "start": ["opened"],
        "stop": ["responded"],
        "pause": ["waiting"],
        "resume": ["replied"],
        "targetBy": "priority",
        "targets": {"P1": "15m"},
        "warnings": [],
        "groupBy": ["customer"],
        "good": None,
        "target": None,
        "window": None,
        "select": None,
        "alerting": None,
        **overrides,
    }
    doc = agreement(**spec)
    objective = doc.spec.objectives[0]
    assert isinstance(objective, DeadlineObjective)
    return CompiledDeadline(
        doc,
        objective,
        lambda: 0,
        max_open_entities=max_open_entities,
        max_groups=max_groups,
    )


def ev(kind: str, entity: str, at: int = T0, customer: str = "acme", priority: str = "P1") -> Event:
    return Event(
        id=f"{entity}-{kind}-{at}",
        service="desk",
        type=kind,
        time=at,
        entity=entity,
        attributes={"customer": customer, "priority": priority},
    )


def open_entities(shard: DeadlineShard) -> list[tuple[str, str]]:
    return sorted((e.group["customer"], e.group["entity"]) for e in shard.entities.values())


# (case, events as (type, entity, customer, priority), open after, refused)
CASES = [
    (
        "cap reached: the third start is refused",
        [
            ("opened", "A", "acme", "P1"),
            ("opened", "B", "acme", "P1"),
            ("opened", "C", "acme", "P1"),
        ],
        [("acme", "A"), ("acme", "B")],
        1,
    ),
    (
        "a stop frees a slot",
        [
            ("opened", "A", "acme", "P1"),
            ("opened", "B", "acme", "P1"),
            ("responded", "A", "acme", "P1"),
            ("opened", "C", "acme", "P1"),
        ],
        [("acme", "B"), ("acme", "C")],
        0,
    ),
    (
        "a refused entity's later events are those of an unknown one",
        [
            ("opened", "A", "acme", "P1"),
            ("opened", "B", "acme", "P1"),
            ("opened", "C", "acme", "P1"),
            ("waiting", "C", "acme", "P1"),
            ("responded", "C", "acme", "P1"),
        ],
        [("acme", "A"), ("acme", "B")],
        1,
    ),
    (
        "the cap is per group",
        [
            ("opened", "A", "acme", "P1"),
            ("opened", "B", "acme", "P1"),
            ("opened", "C", "globex", "P1"),
        ],
        [("acme", "A"), ("acme", "B"), ("globex", "C")],
        0,
    ),
    (
        "a start without a target is not measured and takes no slot",
        [
            ("opened", "A", "acme", "P1"),
            ("opened", "B", "acme", "P9"),
            ("opened", "C", "acme", "P1"),
        ],
        [("acme", "A"), ("acme", "C")],
        0,
    ),
    (
        "a repeated start of an open entity is not a refusal",
        [
            ("opened", "A", "acme", "P1"),
            ("opened", "B", "acme", "P1"),
            ("opened", "A", "acme", "P1"),
        ],
        [("acme", "A"), ("acme", "B")],
        0,
    ),
]


@pytest.mark.parametrize(
    ("events", "expected", "refused"), [c[1:] for c in CASES], ids=[c[0] for c in CASES]
)
def test_open_entity_cap(
    events: list[tuple[str, str, str, str]], expected: list[tuple[str, str]], refused: int
) -> None:
    c = compiled(max_open_entities=2)
    shard = c.new_shard()
    for i, (kind, entity, customer, priority) in enumerate(events):
        shard.on_event(ev(kind, entity, T0 + i * 1000, customer, priority))
    assert open_entities(shard) == expected
    assert take_refused([c]) == ({c.objective_id: refused} if refused else {})
    assert take_refused([c]) == {}  # taken: reset
    assert sum(shard.open.values()) == len(shard.entities)


def test_clocks_open_before_the_cap_still_fire_and_resolve() -> None:
    c = compiled(max_open_entities=1)
    shard = c.new_shard()
    shard.on_event(ev("opened", "A", T0))
    shard.on_event(ev("opened", "B", T0 + 1))  # refused
    opened = shard.advance(T0 + 16 * MIN)
    assert [(b.kind, b.group["entity"]) for b in opened] == [("breach.opened", "A")]
    resolved = shard.on_event(ev("responded", "A", T0 + 17 * MIN))
    assert [b.kind for b in resolved] == ["breach.resolved"]
    assert shard.on_event(ev("responded", "B", T0 + 17 * MIN)) == []
    assert shard.open == {}


def run(shard: DeadlineShard, events: list[Event], to_ms: int) -> list[Breach]:
    out: list[Breach] = []
    for event in events:
        out.extend(shard.on_event(event))
        out.extend(shard.advance(event.time))
    out.extend(shard.advance(to_ms))
    return out


def test_snapshot_round_trip_keeps_counts_and_refuses_the_same_starts() -> None:
    events = [ev("opened", e, T0 + i * MIN) for i, e in enumerate("ABC")]
    events += [ev("opened", "D", T0 + 4 * MIN), ev("responded", "A", T0 + 5 * MIN)]
    events += [ev("opened", "E", T0 + 6 * MIN), ev("opened", "F", T0 + 7 * MIN)]
    end = T0 + 60 * MIN

    straight_c = compiled(max_open_entities=2)
    straight = straight_c.new_shard()
    expected = run(straight, events, end)

    restored_c = compiled(max_open_entities=2)
    first = restored_c.new_shard()
    got = run(first, events[:4], T0 + 4 * MIN)
    restored = restored_c.load_shard(first.dump())
    assert restored.open == first.open == {"customer=acme": 2}
    got += run(restored, events[4:], end)

    assert [(b.kind, b.id, b.at) for b in got] == [(b.kind, b.id, b.at) for b in expected]
    assert restored.dump() == straight.dump()
    assert open_entities(restored) == [("acme", "B"), ("acme", "E")]
    # C, D refused before the stop of A; F after E took the freed slot.
    assert take_refused([straight_c]) == take_refused([restored_c]) == {straight_c.objective_id: 3}


def test_a_snapshot_from_a_larger_cap_keeps_every_clock() -> None:
    big = compiled(max_open_entities=5).new_shard()
    for i, entity in enumerate("ABC"):
        big.on_event(ev("opened", entity, T0 + i))
    small_c = compiled(max_open_entities=2)
    small = small_c.load_shard(big.dump())
    assert len(small.entities) == 3
    small.on_event(ev("opened", "D", T0 + 10))
    assert take_refused([small_c]) == {small_c.objective_id: 1}
    small.on_event(ev("responded", "A", T0 + 11))
    small.on_event(ev("opened", "D", T0 + 12))  # still 2 open: at the cap
    assert take_refused([small_c]) == {small_c.objective_id: 1}
    small.on_event(ev("responded", "B", T0 + 13))
    small.on_event(ev("opened", "D", T0 + 14))
    assert open_entities(small) == [("acme", "C"), ("acme", "D")]


def test_groups_past_the_group_cap_fold_and_their_entities_are_found_there() -> None:
    c = compiled(max_open_entities=10, max_groups=1)
    shard = c.new_shard()
    shard.on_event(ev("opened", "A", T0, customer="acme"))
    shard.on_event(ev("opened", "B", T0, customer="globex"))
    assert open_entities(shard) == [(OVERFLOW, "B"), ("acme", "A")]
    assert c.overflow_events == 1
    # A stop with globex's own attributes finds B in the overflow group.
    out = shard.on_event(ev("responded", "B", T0 + 20 * MIN, customer="globex"))
    assert [(b.kind, b.group) for b in out] == [
        ("breach.opened", {"customer": OVERFLOW, "entity": "B"}),
        ("breach.resolved", {"customer": OVERFLOW, "entity": "B"}),
    ]
    assert shard.open == {"customer=acme": 1}
    # acme's last clock stops: its slot under the group cap is free for globex.
    shard.on_event(ev("responded", "A", T0 + 21 * MIN, customer="acme"))
    shard.on_event(ev("opened", "C", T0 + 22 * MIN, customer="globex"))
    assert open_entities(shard) == [("globex", "C")]


def test_the_cap_applies_to_an_ungrouped_objective_as_one_group() -> None:
    c = compiled(max_open_entities=1, groupBy=[])
    shard = c.new_shard()
    shard.on_event(ev("opened", "A", T0, customer="acme"))
    shard.on_event(ev("opened", "B", T0, customer="globex"))
    assert [e.group for e in shard.entities.values()] == [{"entity": "A"}]
    assert take_refused([c]) == {c.objective_id: 1}
