"""The consumer's fast path: canonical events decoded with orjson into a slotted object.

Ingest has validated every event on ``slawatch.events`` already, so the evaluator does
not run pydantic per record (that alone would cap it near 100,000 events/s before any
evaluation). :func:`decode` checks just what the engine relies on: the types of the
fields it reads, ``time`` as epoch ms (RFC 3339 text is parsed) inside the event
model's range, ``received_at`` likewise, a finite ``value`` within ±``MAX_ABS_VALUE``,
``outcome`` good/bad, attributes a string map of at most ``MAX_ATTRIBUTES``. Anything
else falls back to the full :class:`shared.schemas.Event` validation, so a bad record
is dead-lettered with the same message as before. The ranges matter beyond tidiness:
a time of 2^63 written to the events topic by anyone but ingest would otherwise reach
the state and fail every checkpoint (PostgreSQL ``bigint``).
"""

from __future__ import annotations

import math

import orjson
from pydantic import ValidationError

from shared.schemas import (
    EVENT_TIME_MAX_MS,
    EVENT_TIME_MIN_MS,
    MAX_ABS_VALUE,
    MAX_ATTRIBUTES,
    Event,
)
from shared.timeutil import parse_time_ms


class FastEvent:
    """The fields of a canonical event the evaluator reads (see :class:`EventLike`)."""

    __slots__ = (
        "attributes",
        "entity",
        "id",
        "outcome",
        "received_at",
        "service",
        "time",
        "type",
        "value",
    )

    def __init__(
        self,
        id: str,
        service: str,
        type: str,
        time: int,
        outcome: str | None,
        value: float | None,
        entity: str | None,
        attributes: dict[str, str],
        received_at: int | None,
    ) -> None:
        self.id = id
        self.service = service
        self.type = type
        self.time = time
        self.outcome = outcome
        self.value = value
        self.entity = entity
        self.attributes = attributes
        self.received_at = received_at


class InvalidEvent(ValueError):
    """The record is not a canonical event; ``errors`` as pydantic reports them."""

    def __init__(self, errors: list[object]) -> None:
        super().__init__(str(errors[:3]))
        self.errors = errors


_OUTCOMES = (None, "good", "bad")


def decode(raw: bytes) -> FastEvent:
    """The event in ``raw``; :class:`InvalidEvent` when it is not a canonical event."""
    try:
        body = orjson.loads(raw)
        if type(body) is dict:
            event = _fast(body)
            if event is not None:
                return event
    except orjson.JSONDecodeError:
        pass
    return _slow(raw)


def _fast(body: dict[str, object]) -> FastEvent | None:
    get = body.get
    event_id, service, kind, time = get("id"), get("service"), get("type"), get("time")
    outcome, value = get("outcome"), get("value")
    attributes = get("attributes", {})
    entity, received_at = get("entity"), get("received_at")
    if type(time) is not int:
        if type(time) is not str:
            return None
        try:
            time = parse_time_ms(time)
        except ValueError:
            return None
    if not EVENT_TIME_MIN_MS <= time < EVENT_TIME_MAX_MS:
        return None
    if (
        type(event_id) is not str
        or not event_id
        or type(service) is not str
        or type(kind) is not str
        or outcome not in _OUTCOMES
        or type(attributes) is not dict
        or not (entity is None or type(entity) is str)
        or not (received_at is None or type(received_at) is int)
    ):
        return None
    if received_at is not None and not 0 <= received_at < EVENT_TIME_MAX_MS:
        return None
    if len(attributes) > MAX_ATTRIBUTES:
        return None
    if value is not None:
        if type(value) is int:
            value = float(value)
        elif type(value) is not float or not math.isfinite(value):
            return None
        if not -MAX_ABS_VALUE <= value <= MAX_ABS_VALUE:
            return None
    for v in attributes.values():
        if type(v) is not str:
            return None
    return FastEvent(
        event_id,
        service,
        kind,
        time,
        outcome,
        value,
        entity,
        attributes,
        received_at,
    )


def _slow(raw: bytes) -> FastEvent:
    try:
        e = Event.from_json(raw)
    except ValidationError as exc:
        raise InvalidEvent(list(exc.errors())) from None
    return FastEvent(
        e.id, e.service, e.type, e.time, e.outcome, e.value, e.entity, e.attributes, e.received_at
    )
