"""Pieces every kind uses: the spec base (camelCase in YAML), names, metadata, durations."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field
from pydantic.alias_generators import to_camel

from shared.timeutil import parse_duration_ms

API_VERSION = "slawatch/v1"
#: A document or objective name; :mod:`shared.definitions.messages` says it in words.
NAME_PATTERN = r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$"
Name = Annotated[str, Field(pattern=NAME_PATTERN)]


class Spec(BaseModel):
    """Base of every spec model: unknown fields rejected, camelCase aliases, immutable."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


def given(model: BaseModel, *fields: str) -> list[str]:
    """Those of ``fields`` (Python names) written in the document, not defaulted."""
    return [f for f in fields if f in model.model_fields_set]


def alias_of(model: BaseModel, field: str) -> str:
    """A field's name as written in YAML (``for_`` → ``for``, ``min_events`` → ``minEvents``)."""
    return type(model).model_fields[field].alias or field


class Metadata(Spec):
    """``name`` (unique per kind), ``labels`` and a free-text ``description``."""

    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


def duration(text: str) -> str:
    """Field validator: the text must be a duration such as ``5m``."""
    parse_duration_ms(text)
    return text


def iana_timezone(name: str) -> str:
    """Field validator: an IANA time zone such as ``Europe/Berlin``."""
    try:
        ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(
            f"unknown time zone {name!r}: use an IANA name such as 'Europe/Berlin'"
        ) from None
    return name


@dataclass(frozen=True)
class RefTo:
    """Marks a field whose value names another document of ``kind``.

    ``soft``: the reference is checked only when the checked set holds at least one
    document of ``kind``. Services and parties are opt-in catalogs: until a user
    declares any, names such as ``service: checkout`` are free-form slugs.
    """

    kind: str
    soft: bool = False


ServiceRef = Annotated[str, RefTo("Service", soft=True)]
PartyRef = Annotated[Name, RefTo("Party", soft=True)]
ReceiverRef = Annotated[Name, RefTo("Receiver")]
CalendarRef = Annotated[Name, RefTo("Calendar")]
AgreementRef = Annotated[Name, RefTo("Agreement")]

#: ``find(kind, name)``: the document of that kind and name in the checked set, or None.
Lookup = Callable[[str, str], object | None]
