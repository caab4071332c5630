"""Routing of raw-topic records: event or dead letter, never dropped."""

from __future__ import annotations

import orjson
import pytest

from services.ingest.normalize import record_id
from services.ingest.records import MAX_ORIGINAL_BYTES, RawRecord, route_raw
from shared.deadletter import DeadLetter
from shared.kafka import MAX_REQUEST_BYTES
from shared.schemas import Event
from shared.topics import Topics

TOPICS = Topics.from_prefix("p")
NOW = 1_800_000_000_000


def raw(value: bytes | None, offset: int = 4) -> RawRecord:
    return RawRecord("p.events.raw", 1, offset, value)


def test_valid_record_becomes_event_keyed_by_service() -> None:
    value = b'{"id":"a","service":"pay","type":"request","time":1700000000005}'
    routed = route_raw(raw(value), TOPICS, NOW)
    assert routed.reason is None
    assert routed.out.topic == "p.events"
    assert routed.out.key == b"pay"
    event = Event.from_json(routed.out.value)
    assert (event.id, event.time, event.received_at) == ("a", 1_700_000_000_005, NOW)


def test_record_without_id_gets_coordinate_id() -> None:
    routed = route_raw(raw(b'{"service":"pay","type":"request"}'), TOPICS, NOW)
    assert Event.from_json(routed.out.value).id == record_id("p.events.raw", 1, 4)


@pytest.mark.parametrize(
    ("value", "reason", "fragment"),
    [
        pytest.param(b"{not json", "invalid_json", "not valid JSON", id="not-json"),
        pytest.param(None, "invalid_json", "no value", id="tombstone"),
        pytest.param(b"[1, 2]", "not_an_object", "got array", id="array"),
        pytest.param(
            b'{"service":"Pay!","type":"request"}', "invalid_event", "service:", id="bad-slug"
        ),
    ],
)
def test_invalid_record_is_dead_lettered(value: bytes | None, reason: str, fragment: str) -> None:
    routed = route_raw(raw(value), TOPICS, NOW)
    assert routed.reason == reason
    assert routed.out.topic == "p.deadletter"
    assert routed.out.key == b"ingest.raw"
    letter = DeadLetter.from_json(routed.out.value)
    assert (letter.rejected_by, letter.reason) == ("ingest.raw", reason)
    assert (letter.topic, letter.partition, letter.offset, letter.at) == ("p.events.raw", 1, 4, NOW)
    assert letter.original == (value or b"")
    assert letter.detail is not None
    assert fragment in letter.detail
    assert orjson.loads(routed.out.value)["schema_version"] == 1


def test_huge_bad_record_still_fits_a_dead_letter() -> None:
    original = b'{"' + b"k" * 1_500_000 + b'": 1, "service": "pay", "type": "t"}'
    routed = route_raw(raw(original), TOPICS, NOW)
    assert routed.reason == "invalid_event"
    assert len(routed.out.value) < MAX_REQUEST_BYTES
    letter = DeadLetter.from_json(routed.out.value)
    assert letter.original == original[:MAX_ORIGINAL_BYTES]
    assert f"of {len(original)} bytes" in (letter.detail or "")
