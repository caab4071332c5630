"""A decoded item (a JSON object) → the canonical :class:`shared.schemas.Event`.

Used for HTTP items and for raw-topic records alike. Conveniences for humans
typing ``curl``:

* missing (or ``null``) ``id`` → ``new_id()``; over HTTP a random UUID, so a
  retried request cannot be deduplicated: producers that retry should send ids.
  The raw path derives the id from the record's topic/partition/offset instead,
  so a replayed record keeps its id.
* missing (or ``null``) ``time`` → ``received_at``.

``received_at`` is always set here from the caller's clock reading; a client's
value is ignored. An event time more than ``max_future_skew_ms`` past ``received_at``
is refused (reason ``future``, field ``time``): it would move a watermark past every
honest producer's events. An epoch number out of range that can only be seconds,
microseconds or nanoseconds (:func:`epoch_unit_hint`) is refused with reason
``time_unit`` and a message that says so and gives the value in milliseconds; a
Source converts its own explicit unit first and asks for no hint
(``detect_units=False``). The other ranges are the event model's
(``shared.schemas``, docs/ingest.md "Ranges"). Unknown fields are rejected (the
event model forbids extras). Errors name the field with pydantic's location
(dotted, cut at 200 characters: an unknown field's name comes from the client) and
message.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Callable, Mapping
from fractions import Fraction
from typing import Any

from pydantic import ValidationError

from services.ingest.items import FieldError, Rejected
from shared.schemas import EVENT_TIME_MIN_MS, Event
from shared.timeutil import to_rfc3339

IdFactory = Callable[[], str]

_PREFIXES = ("Value error, ", "Assertion failed, ")
MAX_FIELD_CHARS = 200
#: How far ahead of ingest's clock an event time may be (``SLAWATCH_MAX_FUTURE_SKEW_MS``).
DEFAULT_MAX_FUTURE_SKEW_MS = 300_000


def random_id() -> str:
    """A fresh UUID4 as text: the HTTP default for an event without ``id``."""
    return str(uuid.uuid4())


def record_id(topic: str, partition: int, offset: int) -> str:
    """A UUID5 of a Kafka record's coordinates: stable when the record is consumed again."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"kafka:{topic}/{partition}/{offset}"))


def normalize(
    item: Mapping[str, Any],
    received_at: int,
    *,
    index: int = 0,
    new_id: IdFactory = random_id,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
    detect_units: bool = True,
) -> Event | Rejected:
    """Validate one item into an :class:`Event`, or say which fields are wrong."""
    data = dict(item)
    if data.get("id") is None:
        data["id"] = new_id()
    if data.get("time") is None:
        data["time"] = received_at
    data["received_at"] = received_at
    try:
        event = Event.model_validate(data)
    except ValidationError as exc:
        errors = field_errors(exc)
        # only looked for once the time failed its range: nothing on the hot path
        ceiling = received_at + max_future_skew_ms
        hint = epoch_unit_hint(data["time"], ceiling) if detect_units else None
        if hint is None:
            return Rejected(index, "invalid_event", errors)
        errors = tuple(FieldError("time", hint) if e.field == "time" else e for e in errors)
        return Rejected(index, "time_unit", errors)
    if event.time > received_at + max_future_skew_ms:
        ahead = event.time - received_at
        message = (
            f"time is {ahead} ms ahead of now; at most {max_future_skew_ms} ms "
            "(SLAWATCH_MAX_FUTURE_SKEW_MS) is allowed"
        )
        return Rejected(index, "future", (FieldError("time", message),))
    return event


#: (unit name, factor): the value in that unit times the factor is milliseconds
_OTHER_UNITS: tuple[tuple[str, Fraction], ...] = (
    ("seconds", Fraction(1_000)),
    ("microseconds", Fraction(1, 1_000)),
    ("nanoseconds", Fraction(1, 1_000_000)),
)


def epoch_unit_hint(value: object, ceiling_ms: int) -> str | None:
    """Why an epoch number is not milliseconds, when it can only be another unit.

    ``ceiling_ms`` is the latest acceptable time (now + the future skew). A number
    that is not an acceptable millisecond time, but is one once read as seconds,
    microseconds or nanoseconds, gets a message naming the unit, the time it means
    and the value to send; anything else (text, negative, plausible as no unit at
    all) gets ``None`` and the ordinary range error. The units' plausible ranges
    are disjoint (10^9, 10^15, 10^18 orders), so at most one unit matches.
    """
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    if isinstance(value, float) and not math.isfinite(value):
        return None
    number = Fraction(value)  # exact for 2^63 and for floats alike
    if EVENT_TIME_MIN_MS <= number <= ceiling_ms:
        return None
    for unit, factor in _OTHER_UNITS:
        ms = number * factor
        if EVENT_TIME_MIN_MS <= ms <= ceiling_ms:
            whole = round(ms)
            when = to_rfc3339(whole).replace(".000Z", "Z")
            shown = value if isinstance(value, int) else repr(value)
            return f"{shown} looks like epoch {unit} ({when}); send milliseconds: {whole}"
    return None


def field_errors(exc: ValidationError) -> tuple[FieldError, ...]:
    """pydantic errors as (dotted field, message) pairs."""
    errors: list[FieldError] = []
    for error in exc.errors(include_url=False, include_input=False):
        field = ".".join(str(part) for part in error["loc"])[:MAX_FIELD_CHARS] or None
        message = error["msg"]
        for prefix in _PREFIXES:
            message = message.removeprefix(prefix)
        errors.append(FieldError(field, message))
    return tuple(errors)
