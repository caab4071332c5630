"""The canonical event and the breach id: validation and determinism."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.schemas import Event, breach_id

BASE = {"id": "e1", "service": "checkout", "type": "request", "time": 1_700_000_000_000}


def test_minimal_event_round_trips_through_json() -> None:
    event = Event.model_validate(
        {**BASE, "outcome": "good", "value": 12.5, "attributes": {"customer": "acme"}}
    )
    assert Event.from_json(event.to_json()) == event
    assert event.schema_version == 1


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        ("2023-11-14T22:13:20Z", 1_700_000_000_000),
        ("2023-11-14T22:13:20.123Z", 1_700_000_000_123),
        ("2023-11-14T23:13:20+01:00", 1_700_000_000_000),
        (1_700_000_000_000, 1_700_000_000_000),
    ],
)
def test_time_accepts_rfc3339_and_epoch_ms(time: object, expected: int) -> None:
    assert Event.model_validate({**BASE, "time": time}).time == expected


@pytest.mark.parametrize(
    ("patch", "field"),
    [
        ({"service": "Check Out"}, "service"),
        ({"service": ""}, "service"),
        ({"time": "yesterday"}, "time"),
        ({"time": "2023-11-14T22:13:20"}, "time"),
        ({"time": True}, "time"),
        ({"outcome": "ok"}, "outcome"),
        ({"value": float("nan")}, "value"),
        ({"value": "fast"}, "value"),
        ({"attributes": {f"k{i}": "v" for i in range(33)}}, "attributes"),
        ({"attributes": {"customer": "x" * 257}}, "attributes"),
        ({"attributes": {"n": 1}}, "attributes"),
        ({"colour": "blue"}, "colour"),
        ({"id": ""}, "id"),
    ],
)
def test_bad_events_name_the_field(patch: dict[str, object], field: str) -> None:
    with pytest.raises(ValidationError) as info:
        Event.model_validate({**BASE, **patch})
    assert field in {str(e["loc"][0]) for e in info.value.errors()}


def test_missing_required_fields_are_reported() -> None:
    with pytest.raises(ValidationError) as info:
        Event.model_validate({"id": "x"})
    assert {e["loc"][0] for e in info.value.errors()} == {"service", "type", "time"}


group_values = st.dictionaries(st.sampled_from(["customer", "region"]), st.text(max_size=5))


@given(objective=st.text(max_size=20), group=group_values, opened=st.integers(0, 2**48))
def test_breach_id_is_deterministic(objective: str, group: dict[str, str], opened: int) -> None:
    reordered = dict(reversed(list(group.items())))
    assert breach_id(objective, group, "threshold", opened) == breach_id(
        objective, reordered, "threshold", opened
    )


def test_breach_id_differs_by_every_input() -> None:
    base = breach_id("a/availability", {"customer": "acme"}, "threshold", 1000)
    assert (
        len(
            {
                base,
                breach_id("a/latency", {"customer": "acme"}, "threshold", 1000),
                breach_id("a/availability", {"customer": "zeta"}, "threshold", 1000),
                breach_id("a/availability", {"customer": "acme"}, "burn-rate", 1000),
                breach_id("a/availability", {"customer": "acme"}, "threshold", 1001),
            }
        )
        == 5
    )
