"""Deadline objective in business time, and freshness: timers fire without further
events, at instants independent of when the tick runs."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.business import BusinessClock
from services.evaluator.objectives.deadline import CompiledDeadline, DeadlineShard
from services.evaluator.objectives.freshness import CompiledFreshness
from shared.definitions.model import CalendarSpec, DeadlineObjective, FreshnessObjective
from shared.schemas import Breach, Event
from shared.timeutil import parse_time_ms
from tests.unit.evaluator.factories import agreement

MIN = 60_000
OFFICE = CalendarSpec.model_validate(
    {
        "timezone": "Europe/Berlin",
        "hours": [{"days": ["mon", "tue", "wed", "thu", "fri"], "start": "09:00", "end": "17:00"}],
        "holidays": ["2026-12-25"],
    }
)


def t(text: str) -> int:
    return parse_time_ms(text)


def ticket(kind: str, at: int, entity: str = "T-1", priority: str = "P1") -> Event:
    return Event(
        id=f"{entity}-{kind}-{at}",
        service="desk",
        type=kind,
        time=at,
        entity=entity,
        attributes={"priority": priority},
    )


def deadline(**overrides: Any) -> DeadlineShard:
    spec: dict[str, Any] = {
        "name": "response",
        "kind": "deadline",
        "service": "desk",
        "start": ["ticket.opened"],
        "stop": ["ticket.responded"],
        "pause": ["ticket.waiting"],
        "resume": ["ticket.replied"],
        "targetBy": "priority",
        "targets": {"P1": "15m", "P2": "1h"},
        "calendar": "office",
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
    return CompiledDeadline(doc, objective, lambda: 0, OFFICE).new_shard()


def test_friday_1650_p1_breaches_monday_0905_without_further_events() -> None:
    shard = deadline()
    assert shard.on_event(ticket("ticket.opened", t("2026-11-27T16:50:00+01:00"))) == []
    # Friday: 10 of 15 minutes used, so the 50 % warning (7.5 min) fired at 16:57:30.
    friday = shard.advance(t("2026-11-27T23:00:00+01:00"))
    assert [(b.kind, b.at) for b in friday] == [
        ("deadline.warning", t("2026-11-27T16:57:30+01:00"))
    ]
    # Over the weekend nothing; the watermark passes Monday morning without any event.
    assert shard.advance(t("2026-11-30T09:00:00+01:00")) == []
    out = shard.advance(t("2026-11-30T10:00:00+01:00"))
    assert [(b.kind, b.at) for b in out][:2] == [
        ("deadline.warning", t("2026-11-30T09:01:15+01:00")),
        ("deadline.warning", t("2026-11-30T09:03:30+01:00")),
    ]
    opened = [b for b in out if b.kind == "breach.opened"]
    assert len(opened) == 1
    assert opened[0].at == t("2026-11-30T09:05:00+01:00")
    assert opened[0].opened_at == opened[0].at
    assert opened[0].group == {"entity": "T-1"}


def test_warnings_at_50_75_90_percent() -> None:
    shard = deadline(calendar=None)
    start = t("2026-11-25T10:00:00+01:00")
    shard.on_event(ticket("ticket.opened", start))
    out = shard.advance(start + 20 * MIN)
    kinds = [(b.kind, b.at - start) for b in out]
    assert kinds == [
        ("deadline.warning", 450_000),
        ("deadline.warning", 675_000),
        ("deadline.warning", 810_000),
        ("breach.opened", 900_000),
    ]
    assert len({b.id for b in out}) == 1
    assert out[0].severity == "warning"


def test_pause_shifts_the_deadline_by_the_paused_business_time() -> None:
    shard = deadline()
    start = t("2026-11-25T16:55:00+01:00")  # Wednesday
    shard.on_event(ticket("ticket.opened", start))
    shard.on_event(ticket("ticket.waiting", start + 2 * MIN))  # 2 min used
    # Paused over the night and 30 business minutes next morning.
    assert shard.advance(t("2026-11-26T09:30:00+01:00")) == []
    shard.on_event(ticket("ticket.replied", t("2026-11-26T09:30:00+01:00")))
    out = shard.advance(t("2026-11-26T12:00:00+01:00"))
    opened = [b for b in out if b.kind == "breach.opened"]
    assert opened[0].at == t("2026-11-26T09:43:00+01:00")


def test_an_event_exactly_at_the_deadline() -> None:
    """A stop at the due instant meets the target; a pause there has used it up."""
    start = t("2026-11-25T10:00:00+01:00")
    due = start + 15 * MIN
    stopped = deadline()
    stopped.on_event(ticket("ticket.opened", start))
    kinds = [b.kind for b in stopped.on_event(ticket("ticket.responded", due))]
    assert kinds == ["deadline.warning"] * 3  # passed on the way; no breach
    paused = deadline()
    paused.on_event(ticket("ticket.opened", start))
    out = paused.on_event(ticket("ticket.waiting", due))
    assert [(b.kind, b.at) for b in out if b.kind == "breach.opened"] == [("breach.opened", due)]


def test_stop_after_the_deadline_records_the_breach_and_its_overrun() -> None:
    shard = deadline(calendar=None)
    start = t("2026-11-25T10:00:00+01:00")
    shard.on_event(ticket("ticket.opened", start))
    out = shard.on_event(ticket("ticket.responded", start + 20 * MIN))
    assert [b.kind for b in out][-2:] == ["breach.opened", "breach.resolved"]
    resolved = out[-1]
    assert resolved.opened_at == start + 15 * MIN
    assert resolved.resolved_at == start + 20 * MIN
    window = resolved.windows[0]
    assert window.window == "15m" and window.good == 20 * MIN
    assert window.sli == pytest.approx(20 / 15)
    assert shard.entities == {}


def test_stop_in_time_publishes_nothing_more() -> None:
    shard = deadline(calendar=None, warnings=[0.9])
    start = t("2026-11-25T10:00:00+01:00")
    shard.on_event(ticket("ticket.opened", start, priority="P2"))
    assert shard.on_event(ticket("ticket.responded", start + 30 * MIN, priority="P2")) == []


@settings(max_examples=40, deadline=None)
@given(
    st.lists(st.integers(min_value=0, max_value=14 * 86_400_000), min_size=2, max_size=6),
    st.integers(min_value=1, max_value=3 * 86_400_000),
)
def test_business_clock_against_minute_by_minute_reference(points: list[int], ms: int) -> None:
    clock = BusinessClock(OFFICE)
    base = t("2026-12-21T00:00:00+01:00")
    a, b = sorted(points)[:2]
    a, b = base + a // MIN * MIN, base + b // MIN * MIN
    if b - a > 3 * 86_400_000:
        b = a + 3 * 86_400_000

    def working(m: int) -> bool:
        return clock.elapsed(m, m + MIN) == MIN

    reference = sum(MIN for m in range(a, b, MIN) if working(m))
    assert clock.elapsed(a, b) == reference
    due = clock.add(a, ms // MIN * MIN)
    assert clock.elapsed(a, due) == ms // MIN * MIN


def test_freshness_fires_on_silence_and_resolves_on_the_next_event() -> None:
    doc = agreement(
        name="acme-heartbeat",
        kind="freshness",
        maxSilence="5m",
        good=None,
        target=None,
        window=None,
        alerting=None,
        select={"type": "heartbeat"},
    )
    objective = doc.spec.objectives[0]
    assert isinstance(objective, FreshnessObjective)
    shard = CompiledFreshness(doc, objective, lambda: 0).new_shard()
    t0 = 1_700_000_000_000
    beat = Event(id="h1", service="checkout", type="heartbeat", time=t0)
    out: list[Breach] = shard.on_event(beat)
    out += shard.advance(t0 + 5 * MIN)  # exactly maxSilence: not yet
    assert out == []
    out += shard.advance(t0 + 5 * MIN + 1)
    assert [(b.kind, b.at) for b in out] == [("breach.opened", t0 + 5 * MIN)]
    # A reload withdrawing the rule now would resolve it as of the last heartbeat.
    [withdrawn] = shard.resolutions()
    assert (withdrawn.kind, withdrawn.id, withdrawn.at) == (
        "breach.resolved",
        out[0].id,
        t0 + 5 * MIN,
    )
    out += shard.on_event(Event(id="h2", service="checkout", type="heartbeat", time=t0 + 9 * MIN))
    assert [(b.kind, b.at) for b in out][-1] == ("breach.resolved", t0 + 9 * MIN)
    assert shard.resolutions() == []
    again = shard.advance(t0 + 20 * MIN)
    assert again[0].id != out[0].id and again[0].at == t0 + 14 * MIN


def test_resolutions_name_every_breached_open_clock_without_changing_it() -> None:
    shard = deadline()
    start = t("2026-11-25T10:00:00+01:00")
    shard.on_event(ticket("ticket.opened", start, entity="T-1"))
    shard.on_event(ticket("ticket.opened", start, entity="T-2", priority="P2"))
    opened = [b for b in shard.advance(start + 20 * MIN) if b.kind == "breach.opened"]
    assert len(opened) == 1  # T-1 (15m) breached, T-2 (1h) not yet
    [resolved] = shard.resolutions()
    assert (resolved.kind, resolved.id, resolved.at) == (
        "breach.resolved",
        opened[0].id,
        start + 20 * MIN,
    )
    assert shard.open_breaches() == 1  # unchanged: the reload decides what to drop
