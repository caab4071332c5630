"""Source mapping tables: every time format, every operator, missing fields, wrong types."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
import yaml
from pydantic import ValidationError

from services.ingest.mapping import (
    MappingError,
    SourceRecord,
    compare,
    compile_mapping,
    lookup,
    map_record,
    to_time_ms,
)
from services.ingest.normalize import record_id
from shared.definitions.kinds.source import Condition, Source, SourceSpec, parse_path
from shared.schemas import Event

NOW = 1_800_000_000_000
T = 1_795_870_800_000  # 2026-11-28T13:00:00Z


def spec(**mapping: Any) -> SourceSpec:
    return SourceSpec.model_validate({"topics": ["shop.orders"], "mapping": mapping})


def record(value: object, *, raw: bytes | None = None, offset: int = 7) -> SourceRecord:
    data = raw if raw is not None else orjson.dumps(value)
    return SourceRecord("shop.orders", 1, offset, T - 5, data)


def run(document: object, **mapping: Any) -> Event | list[MappingError]:
    return map_record(compile_mapping(spec(**mapping)), record(document), NOW)


BASE: dict[str, Any] = {"service": "$.app"}
ORDER = {"app": "checkout", "ts": 1795870800, "status": 200, "ms": 12.5, "cust": {"id": "acme"}}


def test_minimal_mapping_uses_coordinates_timestamp_and_defaults() -> None:
    event = run(ORDER, **BASE)
    assert event == Event(
        id=record_id("shop.orders", 1, 7),
        service="checkout",
        type="request",
        time=T - 5,
        source="kafka:shop.orders",
        received_at=NOW,
    )


def test_full_mapping() -> None:
    event = run(
        ORDER | {"rid": "r-1", "region": "eu", "paid": True, "n": 3},
        id="$.rid",
        service="$.app",
        type="order.placed",
        time={"path": "$.ts", "format": "epoch_s"},
        outcome="status < 500",
        value={"path": "$.ms", "unit": "ms", "to": "s"},
        entity="$.cust.id",
        attributes=["$.region", "$.paid", "$.n", "$.absent"],
        source="shop",
    )
    assert isinstance(event, Event), event
    assert event.model_dump(exclude_none=True) == {
        "schema_version": 1,
        "id": "r-1",
        "service": "checkout",
        "type": "order.placed",
        "time": T,
        "outcome": "good",
        "value": 0.0125,
        "entity": "acme",
        "attributes": {"region": "eu", "paid": "true", "n": "3"},
        "source": "shop",
        "received_at": NOW,
    }


@pytest.mark.parametrize(
    ("fmt", "raw", "expected"),
    [
        ("epoch_s", 1795870800, T),
        ("epoch_s", 1795870800.25, T + 250),
        ("epoch_ms", T, T),
        ("epoch_ms", float(T), T),
        ("rfc3339", "2026-11-28T13:00:00Z", T),
        ("rfc3339", "2026-11-28T14:00:00.5+01:00", T + 500),
        ("auto", "2026-11-28T13:00:00Z", T),
        ("auto", 1795870800, T),
        ("auto", T, T),
    ],
)
def test_time_formats(fmt: str, raw: object, expected: int) -> None:
    assert to_time_ms(raw, fmt) == expected
    event = run({"app": "checkout", "ts": raw}, **BASE, time={"path": "$.ts", "format": fmt})
    assert isinstance(event, Event)
    assert event.time == expected


@pytest.mark.parametrize(
    ("fmt", "raw", "reason"),
    [
        ("epoch_s", "1795870800", "wrong_type"),
        ("epoch_ms", True, "wrong_type"),
        ("rfc3339", 1795870800, "wrong_type"),
        ("rfc3339", "yesterday", "invalid_value"),
        ("rfc3339", "2026-11-28T13:00:00", "invalid_value"),
        ("auto", [1], "wrong_type"),
    ],
)
def test_bad_times(fmt: str, raw: object, reason: str) -> None:
    errors = run({"app": "checkout", "ts": raw}, **BASE, time={"path": "$.ts", "format": fmt})
    assert isinstance(errors, list)
    assert [(e.reason, e.field) for e in errors] == [(reason, "time")]


@pytest.mark.parametrize(
    ("condition", "status", "outcome"),
    [
        ("status < 500", 499, "good"),
        ("status < 500", 500, "bad"),
        ("status <= 500", 500, "good"),
        ("status <= 500", 501, "bad"),
        ("status > 199", 200, "good"),
        ("status > 199", 199, "bad"),
        ("status >= 200", 200, "good"),
        ("status >= 200", 199.5, "bad"),
        ("status == 200", 200.0, "good"),
        ("status == 200", 201, "bad"),
        ("status != 503", 200, "good"),
        ("status != 503", 503, "bad"),
        ("$.status == 'ok'", "ok", "good"),
        ('status == "ok"', "failed", "bad"),
        ("status < 'm'", "a", "good"),
        ("status == true", True, "good"),
        ("status == true", 1, "bad"),
        ("status != null", "x", "good"),
    ],
)
def test_every_operator(condition: str, status: object, outcome: str) -> None:
    event = run({"app": "checkout", "status": status}, **BASE, outcome=condition)
    assert isinstance(event, Event), event
    assert event.outcome == outcome


@pytest.mark.parametrize(
    ("condition", "status"),
    [("status < 500", "200"), ("status > 'a'", 3), ("status >= 1", True), ("status < 5", [])],
)
def test_comparison_of_wrong_types(condition: str, status: object) -> None:
    errors = run({"app": "checkout", "status": status}, **BASE, outcome=condition)
    assert isinstance(errors, list)
    assert [(e.reason, e.field) for e in errors] == [("wrong_type", "outcome")]


def test_outcome_from_good_values() -> None:
    mapping = {"outcome": {"path": "$.result", "good": ["ok", 1]}}
    for result, expected in [("ok", "good"), (1, "good"), ("error", "bad"), (True, "bad")]:
        event = run({"app": "checkout", "result": result}, **BASE, **mapping)
        assert isinstance(event, Event)
        assert event.outcome == expected


def test_missing_fields_are_all_reported() -> None:
    errors = run(
        {"other": 1},
        id="$.rid",
        service="$.app",
        time="$.ts",
        outcome="http.status < 500",
        value="$.ms",
        entity="$.cust.id",
    )
    assert isinstance(errors, list)
    assert [(e.reason, e.field, e.message) for e in errors] == [
        ("missing_field", "id", "$.rid missing"),
        ("missing_field", "service", "$.app missing"),
        ("missing_field", "time", "$.ts missing"),
        ("missing_field", "outcome", "$.http.status missing"),
        ("missing_field", "value", "$.ms missing"),
    ]


def test_null_counts_as_missing() -> None:
    errors = run({"app": None}, **BASE)
    assert isinstance(errors, list)
    assert errors[0].reason == "missing_field"


@pytest.mark.parametrize(
    ("document", "mapping", "field"),
    [
        ({"app": 5}, {}, "service"),
        ({"app": "checkout", "rid": {"a": 1}}, {"id": "$.rid"}, "id"),
        ({"app": "checkout", "ms": "12"}, {"value": "$.ms"}, "value"),
        ({"app": "checkout", "ms": False}, {"value": "$.ms"}, "value"),
        ({"app": "checkout", "c": {"x": 1}}, {"attributes": ["$.c"]}, "attributes.c"),
        ({"app": "checkout", "t": 1}, {"type": "$.t"}, "type"),
    ],
)
def test_wrong_types(document: dict[str, Any], mapping: dict[str, Any], field: str) -> None:
    errors = run(document, **BASE | mapping)
    assert isinstance(errors, list)
    assert [(e.reason, e.field) for e in errors] == [("wrong_type", field)]


def test_canonical_validation_errors() -> None:
    errors = run({"app": "Not A Slug"}, **BASE)
    assert isinstance(errors, list)
    assert [(e.reason, e.field) for e in errors] == [("invalid_event", "service")]


@pytest.mark.parametrize(
    ("raw", "reason"),
    [(b"{oops", "invalid_json"), (b"[1]", "not_an_object"), (None, "invalid_json")],
)
def test_undecodable_records(raw: bytes | None, reason: str) -> None:
    mapping = compile_mapping(spec(**BASE))
    rec = SourceRecord("shop.orders", 0, 1, None, raw)
    errors = map_record(mapping, rec, NOW)
    assert isinstance(errors, list)
    assert errors[0].reason == reason


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ({"path": "$.v", "unit": "s"}, 1500.0),
        ({"path": "$.v", "unit": "us"}, 0.0015),
        ({"path": "$.v", "unit": "ns", "to": "us"}, 0.0015),
        ({"path": "$.v", "unit": "KiB"}, 1536.0),
        ({"path": "$.v", "unit": "MB", "to": "KB"}, 1500.0),
        ({"path": "$.v", "unit": "h", "to": "m"}, 90.0),
        ("$.v", 1.5),
    ],
)
def test_value_units(value: object, expected: float) -> None:
    event = run({"app": "checkout", "v": 1.5}, **BASE, value=value)
    assert isinstance(event, Event)
    assert event.value == pytest.approx(expected)


def test_coordinates_id_is_stable_and_distinct() -> None:
    mapping = compile_mapping(spec(**BASE))
    a = map_record(mapping, record(ORDER, offset=1), NOW)
    b = map_record(mapping, record(ORDER, offset=1), NOW + 1)
    c = map_record(mapping, record(ORDER, offset=2), NOW)
    assert isinstance(a, Event) and isinstance(b, Event) and isinstance(c, Event)
    assert a.id == b.id != c.id


@pytest.mark.parametrize(
    ("text", "steps"),
    [
        ("$.a", ("a",)),
        ("$.a.b_c-d", ("a", "b_c-d")),
        ("$['user agent'].x", ("user agent", "x")),
        ('$["q\\"uote"]', ('q"uote',)),
        ("$.tags[0]", ("tags", 0)),
    ],
)
def test_paths(text: str, steps: tuple[object, ...]) -> None:
    assert parse_path(text) == steps
    document = {"a": {"b_c-d": 1}, "user agent": {"x": 2}, 'q"uote': 3, "tags": ["t"]}
    assert lookup(document, parse_path(text)) is not None


@pytest.mark.parametrize("bad", ["a.b", "$", "$.", "$..a", "$[x]", "$.a[", "$.1a"])
def test_bad_paths(bad: str) -> None:
    with pytest.raises(ValueError):
        parse_path(bad)


@pytest.mark.parametrize(
    "bad", ["status", "status < ", "< 5", "status < maybe", "status < true", "status =~ 5"]
)
def test_bad_conditions(bad: str) -> None:
    with pytest.raises(ValueError):
        Condition.parse(bad)


def test_compare_numbers_ints_and_floats() -> None:
    assert compare(1, "==", 1.0) is True
    assert isinstance(compare(None, "<", 1), str)


@pytest.mark.parametrize(
    "mapping",
    [
        {"service": "$.app", "value": {"path": "$.v", "unit": "s", "to": "MB"}},
        {"service": "$.app", "value": {"path": "$.v", "unit": "furlong"}},
        {"service": "$.app", "outcome": {"path": "$.r"}},
        {"service": "$.app", "outcome": {"when": "a < 1", "path": "$.r", "good": ["x"]}},
        {"service": "$.app", "attributes": ["$.tags[0]"]},
        {"service": "$.app", "time": {"path": "$.t", "format": "epoch_ns"}},
        {"service": "$.app", "id": "offset"},
        {"service": ""},
    ],
)
def test_invalid_mappings_are_refused(mapping: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        spec(**mapping)


README_SNIPPET = """\
apiVersion: slawatch/v1
kind: Source
metadata: {name: shop-orders}
spec: {topics: [shop.orders],
       mapping: {service: $.app, time: $.ts, outcome: status < 500, value: $.latency_ms}}
"""


def test_the_five_line_snippet_is_valid() -> None:
    assert len(README_SNIPPET.splitlines()) == 5
    source = Source.model_validate(yaml.safe_load(README_SNIPPET))
    mapping = compile_mapping(source.spec)
    event = map_record(mapping, record(ORDER | {"latency_ms": 80}), NOW)
    assert isinstance(event, Event)
    assert (event.service, event.time, event.outcome, event.value) == ("checkout", T, "good", 80)


@pytest.mark.parametrize(("stamp", "expected"), [(None, NOW), (-1, NOW), (T, T)])
def test_kafka_timestamp_is_the_default_time(stamp: int | None, expected: int) -> None:
    rec = SourceRecord("shop.orders", 0, 1, stamp, orjson.dumps(ORDER))
    event = map_record(compile_mapping(spec(**BASE)), rec, NOW)
    assert isinstance(event, Event)
    assert event.time == expected
