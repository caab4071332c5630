"""Epoch numbers in the wrong unit: the hint, normalize's ``time_unit`` rejection, and
Sources (explicit unit, no hint; past the future-skew bound → ``future``)."""

from __future__ import annotations

from fractions import Fraction

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.ingest.items import Rejected
from services.ingest.mapping import MappingError, SourceRecord, compile_mapping, map_record
from services.ingest.normalize import epoch_unit_hint, normalize
from shared.definitions.kinds.source import SourceSpec
from shared.schemas import EVENT_TIME_MIN_MS, Event

NOW = 1_764_806_400_000  # 2025-12-04T00:00:00Z
SKEW = 300_000
CEILING = NOW + SKEW
ITEM = {"id": "e-1", "service": "checkout", "type": "request", "outcome": "good"}


@pytest.mark.parametrize(
    ("value", "hint"),
    [
        (
            1_764_806_400,
            "1764806400 looks like epoch seconds (2025-12-04T00:00:00Z); "
            "send milliseconds: 1764806400000",
        ),
        (
            1_764_806_400.25,
            "1764806400.25 looks like epoch seconds "
            "(2025-12-04T00:00:00.250Z); send milliseconds: 1764806400250",
        ),
        (
            946_684_800,
            "946684800 looks like epoch seconds (2000-01-01T00:00:00Z); "
            "send milliseconds: 946684800000",
        ),
        (
            1_764_806_400_000_000,
            "1764806400000000 looks like epoch microseconds "
            "(2025-12-04T00:00:00Z); send milliseconds: 1764806400000",
        ),
        (
            1_764_806_400_123_456,
            "1764806400123456 looks like epoch microseconds "
            "(2025-12-04T00:00:00.123Z); send milliseconds: 1764806400123",
        ),
        (
            1_764_806_400_000_000_000,
            "1764806400000000000 looks like epoch nanoseconds "
            "(2025-12-04T00:00:00Z); send milliseconds: 1764806400000",
        ),
        (
            1.7648064e18,
            "1.7648064e+18 looks like epoch nanoseconds "
            "(2025-12-04T00:00:00Z); send milliseconds: 1764806400000",
        ),
        # seconds a little ahead, within the skew: still seconds
        (
            NOW // 1000 + 299,
            f"{NOW // 1000 + 299} looks like epoch seconds "
            "(2025-12-04T00:04:59Z); send milliseconds: 1764806699000",
        ),
        # plausible milliseconds and other numbers: no hint
        (NOW, None),
        (EVENT_TIME_MIN_MS, None),
        (CEILING + 1, None),  # milliseconds, but ahead: the future check says so
        (0, None),
        (1, None),
        (-1_764_806_400, None),
        (-1.5, None),
        (946_684_799, None),  # seconds before 2000
        (NOW // 1000 + 301, None),  # seconds past the ceiling
        (10**11, None),  # 1973 in ms; 5138 in seconds; 1970 in µs
        (2**63, None),  # the year 2262 even as nanoseconds
        (2**63 - 1, None),
        (2**64, None),
        (10**30, None),
        (float("nan"), None),
        (float("inf"), None),
        (-float("inf"), None),
        (1e308, None),
        (True, None),
        (False, None),
        ("1764806400", None),
        ("2025-12-04T00:00:00Z", None),
        (None, None),
        ([1_764_806_400], None),
    ],
)
def test_epoch_unit_hint(value: object, hint: str | None) -> None:
    assert epoch_unit_hint(value, CEILING) == hint


@given(st.integers(min_value=-(2**70), max_value=2**70) | st.floats(allow_nan=True))
def test_hint_only_when_exactly_one_other_unit_is_plausible(value: float) -> None:
    """Reference: a hint iff the number is not a plausible ms time and exactly one of
    seconds/µs/ns makes it one; the hint's ms value is that reading, rounded."""
    hint = epoch_unit_hint(value, CEILING)
    if value != value or value in (float("inf"), -float("inf")):
        assert hint is None
        return
    number = Fraction(value)
    readings = {
        unit: number * factor
        for unit, factor in (
            ("seconds", Fraction(1000)),
            ("microseconds", Fraction(1, 1000)),
            ("nanoseconds", Fraction(1, 10**6)),
        )
        if EVENT_TIME_MIN_MS <= number * factor <= CEILING
    }
    if EVENT_TIME_MIN_MS <= number <= CEILING or not readings:
        assert hint is None
        return
    assert len(readings) == 1
    ((unit, ms),) = readings.items()
    assert hint is not None
    assert f"looks like epoch {unit} (" in hint
    assert hint.endswith(f"; send milliseconds: {round(ms)}")


def rejected(time: object, **change: object) -> Rejected:
    result = normalize({**ITEM, "time": time, **change}, NOW, index=3)
    assert isinstance(result, Rejected), result
    assert result.index == 3
    return result


@pytest.mark.parametrize(
    ("time", "unit"),
    [
        (1_764_806_400, "seconds"),
        (1_764_806_400.5, "seconds"),
        (1_764_806_400_000_000, "microseconds"),
        (1_764_806_400_000_000_000, "nanoseconds"),
    ],
)
def test_normalize_refuses_other_units_with_the_hint(time: object, unit: str) -> None:
    result = rejected(time)
    assert result.reason == "time_unit"
    ((field, message),) = [(e.field, e.message) for e in result.errors]
    assert field == "time"
    assert f"looks like epoch {unit}" in message
    assert "send milliseconds: 17648064" in message


def test_time_unit_keeps_the_other_errors() -> None:
    result = rejected(1_764_806_400, service="Bad Slug")
    assert result.reason == "time_unit"
    assert sorted(e.field or "" for e in result.errors) == ["service", "time"]
    assert "looks like epoch seconds" in next(e for e in result.errors if e.field == "time").message


@pytest.mark.parametrize("time", [0, -5, 2**63, 10**11, True, "1764806400", "yesterday"])
def test_other_bad_times_stay_invalid_event(time: object) -> None:
    result = rejected(time)
    assert result.reason == "invalid_event"
    assert [e.field for e in result.errors] == ["time"]
    assert "looks like" not in result.errors[0].message


def test_milliseconds_ahead_are_future_not_a_unit() -> None:
    result = rejected(CEILING + 1)
    assert result.reason == "future"


def test_milliseconds_and_text_pass() -> None:
    for time in (NOW, NOW + SKEW, "2025-12-04T00:00:00Z", float(NOW)):
        event = normalize({**ITEM, "time": time}, NOW)
        assert isinstance(event, Event)
        assert event.time == NOW + (SKEW if time == NOW + SKEW else 0)


def test_no_hint_when_asked_for_none() -> None:
    result = normalize({**ITEM, "time": 1_764_806_400}, NOW, detect_units=False)
    assert isinstance(result, Rejected)
    assert result.reason == "invalid_event"
    assert "looks like" not in result.describe()


def source(time: dict[str, str]) -> SourceSpec:
    mapping = {"service": "$.app", "time": time}
    return SourceSpec.model_validate({"topics": ["shop.orders"], "mapping": mapping})


def map_one(document: object, time: dict[str, str], skew: int = SKEW) -> Event | list[MappingError]:
    record = SourceRecord("shop.orders", 0, 11, None, orjson.dumps(document))
    return map_record(compile_mapping(source(time)), record, NOW, max_future_skew_ms=skew)


def test_source_keeps_its_explicit_unit() -> None:
    seconds = {"path": "$.ts", "format": "epoch_s"}
    event = map_one({"app": "checkout", "ts": 1_764_806_400}, seconds)
    assert isinstance(event, Event)
    assert event.time == NOW
    # epoch_ms declared: a seconds number is out of range, with no hint at another unit
    errors = map_one(
        {"app": "checkout", "ts": 1_764_806_400}, {"path": "$.ts", "format": "epoch_ms"}
    )
    assert isinstance(errors, list)
    assert [(e.reason, e.field) for e in errors] == [("invalid_event", "time")]
    assert "looks like" not in errors[0].message


def test_source_record_past_the_bound_is_future() -> None:
    ms = {"path": "$.ts", "format": "epoch_ms"}
    errors = map_one({"app": "checkout", "ts": NOW + 60_001}, ms, skew=60_000)
    assert isinstance(errors, list)
    assert [(e.reason, e.field) for e in errors] == [("future", "time")]
    assert "60001 ms ahead" in errors[0].message
    assert isinstance(map_one({"app": "checkout", "ts": NOW + 60_000}, ms, skew=60_000), Event)
