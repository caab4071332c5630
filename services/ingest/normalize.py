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
honest producer's events. The other ranges are the event model's
(``shared.schemas``, docs/ingest.md "Ranges"). Unknown fields are rejected (the
event model forbids extras). Errors name the field with pydantic's location
(dotted, cut at 200 characters: an unknown field's name comes from the client) and
message.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Mapping
from typing import Any

from pydantic import ValidationError

from services.ingest.items import FieldError, Rejected
from shared.schemas import Event

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
        return Rejected(index, "invalid_event", field_errors(exc))
    if event.time > received_at + max_future_skew_ms:
        ahead = event.time - received_at
        message = (
            f"time is {ahead} ms ahead of now; at most {max_future_skew_ms} ms "
            "(SLAWATCH_MAX_FUTURE_SKEW_MS) is allowed"
        )
        return Rejected(index, "future", (FieldError("time", message),))
    return event


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
