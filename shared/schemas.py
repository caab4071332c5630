"""The wire contracts: the canonical event and the breach event (see DESIGN.md).

Both carry ``schema_version``. Times on the wire are epoch milliseconds (UTC);
RFC 3339 text is accepted for an incoming event's ``time``.

Every number and string of an event has a range (docs/ingest.md, "Ranges"), checked
here so that nothing out of range is produced, stored or evaluated: a time between
:data:`EVENT_TIME_MIN_MS` and :data:`EVENT_TIME_MAX_MS` (the door also refuses times
past now + the future skew, ``services.ingest.normalize``), a finite ``value`` of at
most :data:`MAX_ABS_VALUE` in magnitude, bounded lengths, and no control characters
in any text (they break logs, headers and PostgreSQL text). All integers stay far
inside 53 bits, so JSON, float and ``bigint`` columns carry them exactly.
"""

from __future__ import annotations

import hashlib
import math
import re
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    JsonValue,
    StringConstraints,
    field_validator,
)
from pydantic.json_schema import WithJsonSchema

from shared.timeutil import parse_time_ms

EVENT_SCHEMA_VERSION: Final = 1
BREACH_SCHEMA_VERSION: Final = 1

MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 256
MAX_TEXT = 256

#: 2000-01-01T00:00:00Z: older event times are typos (seconds sent as ms, a zero).
EVENT_TIME_MIN_MS: Final = 946_684_800_000
#: 2100-01-01T00:00:00Z: the ceiling without a clock (the door applies now + skew).
EVENT_TIME_MAX_MS: Final = 4_102_444_800_000
#: |value| at most 10^15: exact in a float below it at whole units, and far from overflow
#: when summed in windows (10^15 times 10^6 events is still < 1.8e308).
MAX_ABS_VALUE: Final = 1e15

#: C0 controls and DEL; a tab or newline in an id or attribute is always a mistake.
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def _no_control(text: str) -> str:
    if _CONTROL.search(text):
        raise ValueError("must not contain control characters (U+0000-U+001F, U+007F)")
    return text


Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
_TEXT_SCHEMA: dict[str, JsonValue] = {
    "type": "string",
    "minLength": 1,
    "maxLength": MAX_TEXT,
    "pattern": r"^[^\x00-\x1f\x7f]*$",
}
ShortText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_TEXT),
    AfterValidator(_no_control),
    WithJsonSchema(_TEXT_SCHEMA),
]


class Event(BaseModel):
    """A canonical service event, as the evaluator consumes it from ``slawatch.events``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = EVENT_SCHEMA_VERSION
    id: ShortText
    service: Slug
    type: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
    time: int = Field(
        description="event time, epoch ms (RFC 3339 text accepted on input), from "
        "2000-01-01T00:00:00Z to now + the future skew",
        ge=EVENT_TIME_MIN_MS,
        lt=EVENT_TIME_MAX_MS,
    )
    outcome: Literal["good", "bad"] | None = None
    value: float | None = Field(
        default=None,
        description=f"a finite number, |value| <= {MAX_ABS_VALUE:.0e}",
        ge=-MAX_ABS_VALUE,
        le=MAX_ABS_VALUE,
    )
    entity: ShortText | None = None
    attributes: dict[str, str] = Field(
        default_factory=dict,
        json_schema_extra={
            "maxProperties": MAX_ATTRIBUTES,
            "propertyNames": {**_TEXT_SCHEMA, "maxLength": MAX_ATTRIBUTE_KEY},
            "additionalProperties": {
                **_TEXT_SCHEMA,
                "minLength": 0,
                "maxLength": MAX_ATTRIBUTE_VALUE,
            },
        },
    )
    source: ShortText | None = None
    received_at: int | None = Field(default=None, ge=0, lt=EVENT_TIME_MAX_MS)

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: object) -> int:
        ms = parse_time_ms(value)
        if not EVENT_TIME_MIN_MS <= ms < EVENT_TIME_MAX_MS:
            # said here rather than by ``ge``: the input may be text or a float
            raise ValueError(
                f"time {value!r:.40} is out of range: event times are from "
                "2000-01-01T00:00:00Z (946684800000) to now + the allowed future skew"
            )
        return ms

    @field_validator("value", mode="before")
    @classmethod
    def _finite(cls, value: object) -> object:
        if isinstance(value, bool):
            raise ValueError("value must be a number, not a boolean")
        if isinstance(value, int | float) and not math.isfinite(value):
            raise ValueError("value must be a finite number")
        if isinstance(value, int | float) and abs(value) > MAX_ABS_VALUE:
            raise ValueError(f"value must be between -{MAX_ABS_VALUE:.0e} and {MAX_ABS_VALUE:.0e}")
        return value

    @field_validator("attributes")
    @classmethod
    def _bounded(cls, attributes: dict[str, str]) -> dict[str, str]:
        if len(attributes) > MAX_ATTRIBUTES:
            raise ValueError(f"at most {MAX_ATTRIBUTES} attributes")
        for key, val in attributes.items():
            if not 0 < len(key) <= MAX_ATTRIBUTE_KEY:
                raise ValueError(
                    f"attribute name {key[:80]!r} must be 1..{MAX_ATTRIBUTE_KEY} chars"
                )
            if len(val) > MAX_ATTRIBUTE_VALUE:
                raise ValueError(f"attribute {key!r} longer than {MAX_ATTRIBUTE_VALUE} chars")
            if _CONTROL.search(key) or _CONTROL.search(val):
                raise ValueError(f"attribute {key[:80]!r} holds a control character")
        return attributes

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump(exclude_none=True))

    @classmethod
    def from_json(cls, data: bytes | str) -> Event:
        return cls.model_validate_json(data)


BreachKind = Literal[
    "breach.opened", "breach.updated", "breach.resolved", "deadline.warning", "budget.exhausted"
]
Severity = Literal["page", "ticket", "warning", "info"]


class AgreementRef(BaseModel):
    """The agreement a breached objective belongs to."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    type: Literal["SLA", "OLA", "UC"]
    provider: str | None = None
    consumer: str | None = None


class WindowSli(BaseModel):
    """The SLI over one window, next to its target."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    window: str
    sli: float | None
    target: float
    good: int | None = None
    valid: int | None = None


class Breach(BaseModel):
    """One lifecycle event of a breach, as published on ``slawatch.breaches``.

    ``id`` names the breach itself (stable over its lifecycle); ``(id, kind, at)``
    names this one event, so a replay produces the same keys.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = BREACH_SCHEMA_VERSION
    id: str
    kind: BreachKind
    at: int = Field(description="event time of this lifecycle event, epoch ms")
    agreement: AgreementRef
    objective: str
    objective_id: str
    service: str
    group: dict[str, str] = Field(default_factory=dict)
    rule: str
    severity: Severity
    windows: list[WindowSli] = Field(default_factory=list)
    burn_rates: dict[str, float] = Field(default_factory=dict)
    error_budget_remaining: float | None = None
    opened_at: int
    resolved_at: int | None = None
    detected_at: int
    trigger_event_id: str | None = None
    trigger_received_at: int | None = None
    labels: dict[str, str] = Field(default_factory=dict)

    @property
    def event_key(self) -> str:
        """Idempotency key of this lifecycle event."""
        return f"{self.id}:{self.kind}:{self.at}"

    def to_json(self) -> bytes:
        return orjson.dumps(self.model_dump())

    @classmethod
    def from_json(cls, data: bytes | str) -> Breach:
        return cls.model_validate_json(data)


def group_key(group: dict[str, str]) -> str:
    """Canonical text of a group's attribute values (sorted by name)."""
    return ",".join(f"{k}={group[k]}" for k in sorted(group))


def breach_id(objective_id: str, group: dict[str, str], rule: str, opened_at: int) -> str:
    """Deterministic breach id: the same breach replayed gets the same id."""
    material = f"{objective_id}\x1f{group_key(group)}\x1f{rule}\x1f{opened_at}"
    return hashlib.sha256(material.encode()).hexdigest()[:32]


def json_loads(data: bytes | str) -> Any:
    return orjson.loads(data)
