"""A source record in a foreign JSON shape → the canonical event (pure).

:func:`compile_mapping` turns a :class:`shared.definitions.kinds.source.SourceSpec`
into a :class:`Mapping` once; :func:`map_record` applies it to one record and
returns the event or *every* error found (``slawatch source test`` shows them all;
the source runner dead-letters the record with them). Errors carry a bounded
``reason`` (a metric label):

=================  ======================================================
``invalid_json``   the record value is not JSON (or is a tombstone)
``not_an_object``  the JSON is not an object
``missing_field``  a mapped path is absent or null (optional ones are skipped:
                   ``entity``, ``attributes``, ``outcome``'s field when
                   ``outcome`` is not configured, ...)
``wrong_type``     the field has a type the mapping cannot use
``invalid_value``  the field has the right type but an unusable value
``invalid_event``  the mapped event fails canonical validation
=================  ======================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Literal

import orjson

from services.ingest.items import describe_json
from services.ingest.normalize import DEFAULT_MAX_FUTURE_SKEW_MS, normalize, record_id
from shared.definitions.kinds.source import (
    Condition,
    PathStep,
    SourceSpec,
    is_path,
    parse_path,
)
from shared.schemas import Event
from shared.timeutil import parse_time_ms

MappingReason = Literal[
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "invalid_event",
    "future",
]
MAPPING_REASONS: tuple[MappingReason, ...] = (
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "invalid_value",
    "invalid_event",
    "future",
)
EPOCH_SECONDS_BELOW = 10**11


@dataclass(frozen=True)
class SourceRecord:
    """The parts of a consumed record that a mapping uses."""

    topic: str
    partition: int
    offset: int
    timestamp_ms: int | None
    value: bytes | None


@dataclass(frozen=True)
class MappingError:
    """One reason a record did not become an event; ``field`` is the canonical field."""

    reason: MappingReason
    field: str | None
    message: str

    def describe(self) -> str:
        return self.message if self.field is None else f"{self.field}: {self.message}"


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


MISSING: Any = _Missing()


@dataclass(frozen=True)
class Ref:
    """A path into the record, or a constant."""

    text: str
    path: tuple[PathStep, ...] | None

    @classmethod
    def of(cls, text: str) -> Ref:
        return cls(text, parse_path(text) if is_path(text) else None)


@dataclass(frozen=True)
class Mapping:
    """A compiled :class:`SourceSpec` mapping."""

    id_path: tuple[PathStep, ...] | None
    service: Ref
    type: Ref
    time_path: tuple[PathStep, ...] | None
    time_format: str
    condition: Condition | None
    outcome_path: tuple[PathStep, ...] | None
    good_values: tuple[object, ...]
    value_path: tuple[PathStep, ...] | None
    value_factor: float
    entity: Ref | None
    attributes: dict[str, tuple[PathStep, ...]]
    source: Ref | None


def compile_mapping(spec: SourceSpec) -> Mapping:
    m = spec.mapping
    outcome = m.outcome
    return Mapping(
        id_path=None if m.id == "coordinates" else parse_path(m.id),
        service=Ref.of(m.service),
        type=Ref.of(m.type),
        time_path=parse_path(m.time.path) if m.time else None,
        time_format=m.time.format if m.time else "auto",
        condition=outcome.condition() if outcome else None,
        outcome_path=parse_path(outcome.path) if outcome and outcome.path else None,
        good_values=tuple(outcome.good) if outcome else (),
        value_path=parse_path(m.value.path) if m.value else None,
        value_factor=m.value.factor() if m.value else 1.0,
        entity=Ref.of(m.entity) if m.entity else None,
        attributes=m.attribute_paths(),
        source=Ref.of(m.source) if m.source else None,
    )


def show_path(path: tuple[PathStep, ...]) -> str:
    out = "$"
    for step in path:
        out += f"[{step}]" if isinstance(step, int) else f".{step}"
    return out


def lookup(document: object, path: tuple[PathStep, ...]) -> Any:
    """The value at ``path``, or :data:`MISSING` (``null`` counts as missing)."""
    current = document
    for step in path:
        if isinstance(step, int):
            if not isinstance(current, list) or step >= len(current):
                return MISSING
            current = current[step]
        else:
            if not isinstance(current, dict) or step not in current:
                return MISSING
            current = current[step]
    return MISSING if current is None else current


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def compare(left: object, op: str, right: object) -> bool | str:
    """``left op right``, or why the types cannot be compared (a message)."""
    if op in ("==", "!="):
        if _number(left) and _number(right):
            equal = float(left) == float(right)  # type: ignore[arg-type]
        else:
            equal = type(left) is type(right) and left == right
        return equal if op == "==" else not equal
    if _number(left) and _number(right):
        a: Any = float(left)  # type: ignore[arg-type]
        b: Any = float(right)  # type: ignore[arg-type]
    elif isinstance(left, str) and isinstance(right, str):
        a, b = left, right
    else:
        return f"cannot compare {describe_json(left)} {op} {describe_json(right)}"
    match op:
        case "<":
            return bool(a < b)
        case "<=":
            return bool(a <= b)
        case ">":
            return bool(a > b)
        case _:
            return bool(a >= b)


def to_time_ms(value: object, fmt: str) -> int | MappingError:
    """A time field in ``fmt`` → epoch ms."""
    wrong = MappingError("wrong_type", "time", f"expected {fmt} time, got {describe_json(value)}")
    if fmt == "rfc3339" or (fmt == "auto" and isinstance(value, str)):
        if not isinstance(value, str):
            return wrong
        try:
            return parse_time_ms(value)
        except ValueError as exc:
            return MappingError("invalid_value", "time", str(exc))
    if not _number(value):
        return wrong
    number = float(value)  # type: ignore[arg-type]
    if not math.isfinite(number):
        return MappingError("invalid_value", "time", "not a finite number")
    seconds = fmt == "epoch_s" or (fmt == "auto" and abs(number) < EPOCH_SECONDS_BELOW)
    return round(number * 1000) if seconds else int(number)


def decode(record: SourceRecord) -> dict[str, Any] | MappingError:
    if record.value is None:
        return MappingError("invalid_json", None, "record has no value (tombstone)")
    try:
        document = orjson.loads(record.value)
    except orjson.JSONDecodeError as exc:
        return MappingError("invalid_json", None, f"not valid JSON: {exc}")
    if not isinstance(document, dict):
        return MappingError(
            "not_an_object", None, f"expected a JSON object, got {describe_json(document)}"
        )
    return document


class _Builder:
    """Collects the canonical fields and every error of one record."""

    def __init__(self, document: dict[str, Any]) -> None:
        self.document = document
        self.errors: list[MappingError] = []

    def get(self, field: str, path: tuple[PathStep, ...], *, required: bool = True) -> Any:
        value = lookup(self.document, path)
        if value is MISSING and required:
            self.errors.append(MappingError("missing_field", field, f"{show_path(path)} missing"))
        return value

    def text(self, field: str, ref: Ref, *, required: bool = True) -> str | None:
        if ref.path is None:
            return ref.text
        value = self.get(field, ref.path, required=required)
        if value is MISSING:
            return None
        if isinstance(value, str):
            return value
        if field in ("id", "entity") and _number(value):
            return str(value)
        self.errors.append(
            MappingError(
                "wrong_type",
                field,
                f"{show_path(ref.path)} is {describe_json(value)}, expected string",
            )
        )
        return None


def map_record(
    mapping: Mapping,
    record: SourceRecord,
    received_at: int,
    *,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> Event | list[MappingError]:
    """One record → its event, or every error found; an event time past
    ``received_at + max_future_skew_ms`` is refused as ``future``, as on the raw path."""
    document = decode(record)
    if isinstance(document, MappingError):
        return [document]
    b = _Builder(document)
    event: dict[str, Any] = {}

    if mapping.id_path is None:
        event["id"] = record_id(record.topic, record.partition, record.offset)
    else:
        event["id"] = b.text("id", Ref(show_path(mapping.id_path), mapping.id_path))
    event["service"] = b.text("service", mapping.service)
    event["type"] = b.text("type", mapping.type)
    event["time"] = _time(b, mapping, record, received_at)
    event["outcome"] = _outcome(b, mapping)
    event["value"] = _value(b, mapping)
    if mapping.entity is not None:
        event["entity"] = b.text("entity", mapping.entity, required=False)
    event["attributes"] = _attributes(b, mapping)
    event["source"] = (
        b.text("source", mapping.source, required=False)
        if mapping.source is not None
        else f"kafka:{record.topic}"
    )
    if b.errors:
        return b.errors
    normalized = normalize(
        {k: v for k, v in event.items() if v is not None},
        received_at,
        index=record.offset,
        max_future_skew_ms=max_future_skew_ms,
        detect_units=False,  # the source's time_format is its explicit unit
    )
    if isinstance(normalized, Event):
        return normalized
    reason: MappingReason = "future" if normalized.reason == "future" else "invalid_event"
    return [MappingError(reason, e.field, e.message) for e in normalized.errors]


def _time(b: _Builder, mapping: Mapping, record: SourceRecord, received_at: int) -> int | None:
    if mapping.time_path is None:  # the Kafka timestamp; -1 means the record has none
        stamp = record.timestamp_ms
        return stamp if stamp is not None and stamp >= 0 else received_at
    raw = b.get("time", mapping.time_path)
    if raw is MISSING:
        return None
    converted = to_time_ms(raw, mapping.time_format)
    if isinstance(converted, MappingError):
        b.errors.append(converted)
        return None
    return converted


def _outcome(b: _Builder, mapping: Mapping) -> str | None:
    if mapping.condition is not None:
        cond = mapping.condition
        left = b.get("outcome", cond.path)
        if left is MISSING:
            return None
        verdict = compare(left, cond.op, cond.literal)
        if isinstance(verdict, str):
            b.errors.append(MappingError("wrong_type", "outcome", f"{cond.text!r}: {verdict}"))
            return None
        return "good" if verdict else "bad"
    if mapping.outcome_path is not None:
        raw = b.get("outcome", mapping.outcome_path)
        if raw is MISSING:
            return None
        good = any(compare(raw, "==", g) is True for g in mapping.good_values)
        return "good" if good else "bad"
    return None


def _value(b: _Builder, mapping: Mapping) -> float | None:
    if mapping.value_path is None:
        return None
    raw = b.get("value", mapping.value_path)
    if raw is MISSING:
        return None
    if not _number(raw):
        where = show_path(mapping.value_path)
        b.errors.append(
            MappingError("wrong_type", "value", f"{where} is {describe_json(raw)}, expected number")
        )
        return None
    return float(raw) * mapping.value_factor


def _attributes(b: _Builder, mapping: Mapping) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for name, path in mapping.attributes.items():
        raw = lookup(b.document, path)
        if raw is MISSING:
            continue
        if isinstance(raw, str):
            attributes[name] = raw
        elif isinstance(raw, bool):
            attributes[name] = "true" if raw else "false"
        elif _number(raw):
            attributes[name] = orjson.dumps(raw).decode()
        else:
            b.errors.append(
                MappingError(
                    "wrong_type",
                    f"attributes.{name}",
                    f"{show_path(path)} is {describe_json(raw)}, expected a scalar",
                )
            )
    return attributes
