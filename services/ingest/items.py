"""The per-item vocabulary shared by parsing, normalization and the two ingest paths.

An incoming batch becomes a list of items, each either :class:`Decoded` (a JSON
object, not yet validated) or :class:`Rejected` (with the reason and the
offending fields). ``index`` is the item's position in the request: the array
index for JSON, the 0-based line number for NDJSON.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

ItemReason = Literal[
    "invalid_json", "not_an_object", "invalid_event", "time_unit", "future", "publish_failed"
]
"""Why one item or record was rejected; a bounded set, used as a metric label."""

ITEM_REASONS: tuple[ItemReason, ...] = (
    "invalid_json",
    "not_an_object",
    "invalid_event",
    "time_unit",
    "future",
    "publish_failed",
)


@dataclass(frozen=True)
class FieldError:
    """One problem with one item. ``field`` is a dotted path; ``None`` means the whole item."""

    field: str | None
    message: str

    def describe(self) -> str:
        return self.message if self.field is None else f"{self.field}: {self.message}"


@dataclass(frozen=True)
class Decoded:
    """A JSON object taken from a batch, not validated yet."""

    index: int
    data: dict[str, Any]


@dataclass(frozen=True)
class Rejected:
    """An item that will not become an event, and why."""

    index: int
    reason: ItemReason
    errors: tuple[FieldError, ...]

    def describe(self) -> str:
        """All errors in one line, for logs and dead-letter details."""
        return "; ".join(error.describe() for error in self.errors)


Item = Decoded | Rejected


def describe_json(value: object) -> str:
    """The JSON type name of a decoded value, for messages."""
    match value:
        case None:
            return "null"
        case bool():
            return "boolean"
        case int() | float():
            return "number"
        case str():
            return "string"
        case list():
            return "array"
        case dict():
            return "object"
    return type(value).__name__


def as_item(index: int, value: object) -> Item:
    """A decoded JSON value as an item: objects pass, anything else is rejected."""
    if isinstance(value, dict):
        return Decoded(index, value)
    return Rejected(
        index,
        "not_an_object",
        (FieldError(None, f"expected a JSON object, got {describe_json(value)}"),),
    )
