"""Outgoing Kafka records, and the routing of one raw-topic record.

A raw record becomes exactly one outgoing record: its normalized event on the
events topic (key = service), or a :class:`shared.deadletter.DeadLetter` on the
dead-letter topic (key = ``ingest.raw``) with the reason, the field-level detail,
the source coordinates and the original bytes. Nothing is dropped.

A dead letter must itself fit under the producer's 1 MiB request cap, or it would
fail on every retry and stop the raw path on one poison record: the original is
kept up to :data:`MAX_ORIGINAL_BYTES` (base64 grows it by a third) and the detail
up to :data:`MAX_DETAIL_CHARS`; a cut is said in the detail.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.ingest.items import FieldError, ItemReason, Rejected
from services.ingest.normalize import DEFAULT_MAX_FUTURE_SKEW_MS, normalize, record_id
from services.ingest.parsing import decode_line
from shared.deadletter import DeadLetter
from shared.schemas import Event
from shared.topics import Topics

MAX_ORIGINAL_BYTES = 512 * 1024
MAX_DETAIL_CHARS = 2_000


@dataclass(frozen=True)
class OutRecord:
    """One record to produce."""

    topic: str
    key: bytes
    value: bytes


@dataclass(frozen=True)
class RawRecord:
    """The parts of a consumed raw-topic record that ingest uses."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True)
class Routed:
    """Where a raw record goes; ``reason`` is set when it went to the dead-letter topic."""

    out: OutRecord
    reason: ItemReason | None


def event_record(event: Event, topics: Topics) -> OutRecord:
    return OutRecord(topics.events, event.service.encode(), event.to_json())


def deadletter_record(letter: DeadLetter, topics: Topics) -> OutRecord:
    return OutRecord(topics.deadletter, letter.key, letter.to_json())


def route_raw(
    record: RawRecord,
    topics: Topics,
    received_at: int,
    *,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> Routed:
    """Normalize one raw record, or dead-letter it with the reason and detail."""
    outcome = _decode(record, received_at, max_future_skew_ms)
    if isinstance(outcome, Event):
        try:
            return Routed(event_record(outcome, topics), None)
        except (TypeError, ValueError) as exc:
            # The event model's ranges make this unreachable; if a range is ever
            # missed, the record is dead-lettered instead of stopping the raw path.
            error = FieldError(None, f"cannot be encoded: {exc}")
            outcome = Rejected(record.offset, "invalid_event", (error,))
    original = record.value or b""
    detail = outcome.describe()
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
    if len(original) > MAX_ORIGINAL_BYTES:
        detail += f" [original cut to its first {MAX_ORIGINAL_BYTES} of {len(original)} bytes]"
        original = original[:MAX_ORIGINAL_BYTES]
    letter = DeadLetter.of(
        "ingest.raw",
        outcome.reason,
        original,
        at=received_at,
        detail=detail,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )
    return Routed(deadletter_record(letter, topics), outcome.reason)


def _decode(record: RawRecord, received_at: int, max_future_skew_ms: int) -> Event | Rejected:
    if record.value is None:
        return Rejected(
            record.offset, "invalid_json", (FieldError(None, "record has no value (tombstone)"),)
        )
    item = decode_line(record.offset, record.value)
    if isinstance(item, Rejected):
        return item
    return normalize(
        item.data,
        received_at,
        index=record.offset,
        new_id=lambda: record_id(record.topic, record.partition, record.offset),
        max_future_skew_ms=max_future_skew_ms,
    )
