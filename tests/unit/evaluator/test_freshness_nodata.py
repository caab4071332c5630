"""Freshness "no data from the start": the silence counts from the objective's
activation, for its ungrouped group or each of its ``expectedGroups``."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from services.evaluator.engine import Engine, home_partition
from services.evaluator.objectives import compile_catalog
from shared.definitions.model import Agreement
from shared.definitions.store import Catalog
from shared.schemas import Breach, breach_id
from tests.unit.evaluator.factories import T0, agreement, agreement_doc, event, fixed_clock

PARTITIONS = 4
LATENESS = 30_000
SILENCE = 60_000
HOME = home_partition("jobs", PARTITIONS)
OTHER = (HOME + 1) % PARTITIONS


class Clock:
    """A wall clock the test moves."""

    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


def freshness(name: str = "nightly", **spec: Any) -> Agreement:
    fields: dict[str, Any] = {
        "kind": "freshness",
        "service": "jobs",
        "maxSilence": "1m",
        "good": None,
        "target": None,
        "window": None,
        "alerting": None,
        "select": None,
    }
    return agreement(name, **(fields | spec))


def engine_at(clock: Clock, *docs: Agreement, partitions: int | None = PARTITIONS) -> Engine:
    catalog = Catalog(agreements={a.metadata.name: a for a in docs}, receivers={})
    return Engine(
        compile_catalog(catalog, fixed_clock),
        allowed_lateness_ms=LATENESS,
        clock=clock,
        max_future_skew_ms=300_000,
        events_partitions=partitions,
    )


def opened(out: list[Breach]) -> list[tuple[dict[str, str], int, str]]:
    return [(b.group, b.at, b.id) for b in out if b.kind == "breach.opened"]


UNGROUPED = freshness()
GROUPED = freshness(groupBy=["customer"], expectedGroups=[{"customer": "acme"}, {"customer": "b"}])
OID = "nightly/availability"

CASES = [
    # name, definition, partition, wall clock of the tick, expected breach groups
    ("ungrouped, at the silence", UNGROUPED, HOME, T0 + SILENCE + LATENESS, []),
    ("ungrouped, past the silence", UNGROUPED, HOME, T0 + SILENCE + LATENESS + 1, [{}]),
    (
        "expected groups",
        GROUPED,
        HOME,
        T0 + SILENCE + LATENESS + 1,
        [{"customer": "acme"}, {"customer": "b"}],
    ),
    ("grouped, none listed", freshness(groupBy=["customer"]), HOME, T0 + 10 * SILENCE, []),
    ("not its partition", UNGROUPED, OTHER, T0 + 10 * SILENCE, []),
]


@pytest.mark.parametrize(
    ("doc", "partition", "tick_at", "groups"),
    [case[1:] for case in CASES],
    ids=[case[0] for case in CASES],
)
def test_a_service_that_never_reports_breaches_after_the_silence(
    doc: Agreement, partition: int, tick_at: int, groups: list[dict[str, str]]
) -> None:
    clock = Clock(T0)
    engine = engine_at(clock, doc)
    engine.assign(partition, None)  # activation: T0
    clock.now = tick_at
    out = engine.tick(partition, idle_now_ms=tick_at)
    due = T0 + SILENCE
    assert opened(out) == [(g, due, breach_id(OID, g, "freshness", due)) for g in groups]
    assert engine.tick(partition, idle_now_ms=tick_at) == []  # opened once


def test_the_activation_survives_a_restart_and_the_breach_keeps_its_id() -> None:
    clock = Clock(T0)
    first = engine_at(clock, UNGROUPED)
    first.assign(HOME, None)
    snapshot = first.snapshot(HOME)
    clock.now = T0 + 5 * SILENCE  # restarted much later
    second = engine_at(clock, UNGROUPED)
    second.assign(HOME, snapshot)
    out = second.tick(HOME, idle_now_ms=clock.now)
    due = T0 + SILENCE
    assert opened(out) == [({}, due, breach_id(OID, {}, "freshness", due))]


def test_existing_state_is_not_activated_again() -> None:
    clock = Clock(T0)
    engine = engine_at(clock, UNGROUPED)
    engine.assign(HOME, None)
    engine.process(HOME, event(T0 + 10_000, service="jobs", type="run"))
    snapshot = engine.snapshot(HOME)
    clock.now = T0 + 20_000
    restored = engine_at(clock, UNGROUPED)
    restored.assign(HOME, snapshot)
    [status] = restored.status(OID)
    assert status.status.clock == T0 + 10_000


def test_the_first_event_resolves_and_takes_over_the_clock() -> None:
    clock = Clock(T0)
    engine = engine_at(clock, UNGROUPED)
    engine.assign(HOME, None)
    clock.now = T0 + 2 * SILENCE
    [breach] = engine.tick(HOME, idle_now_ms=clock.now)
    assert breach.at == T0 + SILENCE
    # A backlogged event older than the activation still resolves it (not before it
    # opened), and the silence counts from that event on.
    out = engine.process(HOME, event(T0 + 90_000, service="jobs", type="run")).breaches
    assert [(b.kind, b.id, b.at) for b in out] == [("breach.resolved", breach.id, T0 + 90_000)]
    [status] = engine.status(OID)
    assert status.status.clock == T0 + 90_000 and status.status.active_breach_id is None


def test_an_event_past_the_silence_opens_and_resolves_at_once() -> None:
    clock = Clock(T0)
    engine = engine_at(clock, UNGROUPED)
    engine.assign(HOME, None)
    out = engine.process(HOME, event(T0 + 3 * SILENCE, service="jobs", type="run")).breaches
    assert [(b.kind, b.at) for b in out] == [
        ("breach.opened", T0 + SILENCE),
        ("breach.resolved", T0 + 3 * SILENCE),
    ]


def test_a_reload_adding_the_objective_activates_it_then() -> None:
    clock = Clock(T0)
    other = agreement("shop", service="checkout")
    engine = engine_at(clock, other)
    engine.assign(HOME, None)
    clock.now = T0 + 7_000
    catalog = Catalog(agreements={"shop": other, "nightly": UNGROUPED}, receivers={})
    changes = engine.reload(compile_catalog(catalog, fixed_clock))
    assert changes[OID] == "added"
    clock.now = T0 + 7_000 + SILENCE + LATENESS + 1
    out = engine.tick(HOME, idle_now_ms=clock.now)
    assert [(b.group, b.at) for b in out if b.kind == "breach.opened"] == [({}, T0 + 67_000)]


def test_without_the_partition_count_nothing_is_activated() -> None:
    clock = Clock(T0)
    engine = engine_at(clock, UNGROUPED, partitions=None)
    engine.assign(HOME, None)
    assert engine.status(OID) == []


def test_an_unchanged_objective_keeps_its_fingerprint_without_expected_groups() -> None:
    """The field is left out of the fingerprint while unused: state stored before it
    existed still matches its objective."""
    [compiled] = compile_catalog(Catalog({"nightly": UNGROUPED}, {}), fixed_clock)
    assert "expected_groups" not in compiled.fingerprint
    [grouped] = compile_catalog(Catalog({"nightly": GROUPED}, {}), fixed_clock)
    assert "expected_groups" in grouped.fingerprint


BAD = [
    ({"expectedGroups": [{"customer": "acme"}]}, "'expectedGroups' needs 'groupBy'"),
    (
        {"groupBy": ["customer"], "expectedGroups": [{"region": "eu"}]},
        r"expectedGroups\[0\] must give a value for each groupBy attribute \(customer\)",
    ),
    (
        {"groupBy": ["customer", "region"], "expectedGroups": [{"customer": "a"}]},
        r"expectedGroups\[0\] must give a value for each groupBy attribute",
    ),
    (
        {"groupBy": ["customer"], "expectedGroups": [{"customer": "a"}, {"customer": "a"}]},
        r"expectedGroups\[1\] repeats an earlier group",
    ),
]


@pytest.mark.parametrize(("spec", "message"), BAD)
def test_expected_groups_are_validated(spec: dict[str, Any], message: str) -> None:
    from shared.definitions.load import parse_document

    doc = agreement_doc(
        "nightly",
        kind="freshness",
        service="jobs",
        maxSilence="1m",
        good=None,
        target=None,
        window=None,
        alerting=None,
        select=None,
        **spec,
    )
    with pytest.raises((ValidationError, ValueError), match=message):
        parse_document(doc)
