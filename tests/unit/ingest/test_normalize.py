"""Decoded item + received_at → Event, or the offending fields."""

from __future__ import annotations

from typing import Any

import pytest

from services.ingest.items import Rejected
from services.ingest.normalize import normalize, random_id, record_id
from shared.schemas import MAX_ATTRIBUTES, Event

RECEIVED = 1_800_000_000_000
GOOD: dict[str, Any] = {
    "id": "e-1",
    "service": "checkout",
    "type": "request",
    "time": 1_700_000_000_123,
    "outcome": "good",
    "value": 181.5,
    "entity": "ticket-9",
    "attributes": {"customer": "acme"},
    "source": "nginx",
}


def fixed_id() -> str:
    return "generated-1"


def ok(item: dict[str, Any]) -> Event:
    result = normalize(item, RECEIVED, new_id=fixed_id)
    assert isinstance(result, Event), result
    return result


def fields(item: dict[str, Any]) -> list[tuple[str | None, str]]:
    result = normalize(item, RECEIVED, index=7, new_id=fixed_id)
    assert isinstance(result, Rejected), result
    assert result.index == 7
    assert result.reason == "invalid_event"
    return [(e.field, e.message) for e in result.errors]


def test_good_event_keeps_every_field_and_gets_received_at() -> None:
    event = ok(GOOD)
    assert event.model_dump(exclude={"received_at", "schema_version"}) == GOOD
    assert event.received_at == RECEIVED


@pytest.mark.parametrize(
    ("time", "expected"),
    [
        pytest.param(1_700_000_000_123, 1_700_000_000_123, id="epoch-ms"),
        pytest.param("2023-11-14T22:13:20.123Z", 1_700_000_000_123, id="rfc3339-z"),
        pytest.param("2023-11-14T23:13:20.123+01:00", 1_700_000_000_123, id="rfc3339-offset"),
        pytest.param(None, RECEIVED, id="null-defaults-to-received"),
    ],
)
def test_time(time: object, expected: int) -> None:
    assert ok(GOOD | {"time": time}).time == expected


def test_missing_time_and_id_get_defaults() -> None:
    item = {"service": "checkout", "type": "heartbeat"}
    event = ok(item)
    assert (event.id, event.time, event.received_at) == ("generated-1", RECEIVED, RECEIVED)


def test_default_id_is_a_fresh_uuid() -> None:
    first = normalize({"service": "a", "type": "t"}, RECEIVED)
    second = normalize({"service": "a", "type": "t"}, RECEIVED)
    assert isinstance(first, Event)
    assert isinstance(second, Event)
    assert first.id != second.id
    assert len(random_id()) == 36


def test_record_id_is_stable_per_coordinates() -> None:
    assert record_id("raw", 0, 5) == record_id("raw", 0, 5)
    assert record_id("raw", 0, 5) != record_id("raw", 1, 5)


def test_client_received_at_is_ignored() -> None:
    assert ok(GOOD | {"received_at": 5}).received_at == RECEIVED


def test_input_is_not_modified() -> None:
    item = {"service": "checkout", "type": "request", "received_at": 1}
    ok(item)
    assert item == {"service": "checkout", "type": "request", "received_at": 1}


@pytest.mark.parametrize(
    ("change", "field", "fragment"),
    [
        pytest.param({"service": "Check Out"}, "service", "pattern", id="bad-slug"),
        pytest.param({"service": None}, "service", "valid string", id="null-service"),
        pytest.param({"type": ""}, "type", "pattern", id="empty-type"),
        pytest.param({"time": "yesterday"}, "time", "invalid RFC 3339 time", id="bad-time"),
        pytest.param({"time": "2023-11-14T22:13:20"}, "time", "no UTC offset", id="naive-time"),
        pytest.param({"time": True}, "time", "not a boolean", id="bool-time"),
        pytest.param({"value": float("inf")}, "value", "finite", id="infinite-value"),
        pytest.param({"value": float("nan")}, "value", "finite", id="nan-value"),
        pytest.param({"value": "fast"}, "value", "valid number", id="text-value"),
        pytest.param({"outcome": "ok"}, "outcome", "'good' or 'bad'", id="bad-outcome"),
        pytest.param(
            {"attributes": {f"k{i}": "v" for i in range(MAX_ATTRIBUTES + 1)}},
            "attributes",
            f"at most {MAX_ATTRIBUTES} attributes",
            id="too-many-attrs",
        ),
        pytest.param(
            {"attributes": {"region": 5}}, "attributes.region", "valid string", id="non-string-attr"
        ),
        pytest.param(
            {"colour": "blue"}, "colour", "Extra inputs are not permitted", id="unknown-field"
        ),
        pytest.param({"schema_version": 2}, "schema_version", "1", id="future-schema"),
    ],
)
def test_bad_events_name_the_field(change: dict[str, Any], field: str, fragment: str) -> None:
    errors = fields(GOOD | change)
    assert len(errors) == 1, errors
    assert errors[0][0] == field
    assert fragment in errors[0][1]
    assert not errors[0][1].startswith("Value error")


def test_missing_required_fields_are_each_named() -> None:
    errors = fields({"time": 1_700_000_000_001})
    assert sorted(field for field, _ in errors) == ["service", "type"]
    assert all(message == "Field required" for _, message in errors)


def test_long_unknown_field_name_is_cut() -> None:
    errors = fields(GOOD | {"x" * 10_000: 1})
    assert errors[0][0] == "x" * 200
