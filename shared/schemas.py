"""The wire contracts: the canonical event and the breach event (see DESIGN.md).

Both carry ``schema_version``. Times on the wire are epoch milliseconds (UTC);
RFC 3339 text is accepted for an incoming event's ``time``.
"""

from __future__ import annotations

import hashlib
import math
from typing import Annotated, Any, Final, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StringConstraints, field_validator

from shared.timeutil import parse_time_ms

EVENT_SCHEMA_VERSION: Final = 1
BREACH_SCHEMA_VERSION: Final = 1

MAX_ATTRIBUTES = 32
MAX_ATTRIBUTE_KEY = 64
MAX_ATTRIBUTE_VALUE = 256

Slug = Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,62}$")]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=256)]


class Event(BaseModel):
    """A canonical service event, as the evaluator consumes it from ``slawatch.events``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    schema_version: Literal[1] = EVENT_SCHEMA_VERSION
    id: ShortText
    service: Slug
    type: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._:/-]{0,127}$")]
    time: int = Field(description="event time, epoch ms; RFC 3339 text accepted on input")
    outcome: Literal["good", "bad"] | None = None
    value: float | None = None
    entity: ShortText | None = None
    attributes: dict[str, str] = Field(default_factory=dict)
    source: ShortText | None = None
    received_at: int | None = None

    @field_validator("time", mode="before")
    @classmethod
    def _time(cls, value: object) -> int:
        return parse_time_ms(value)

    @field_validator("value")
    @classmethod
    def _finite(cls, value: float | None) -> float | None:
        if value is not None and not math.isfinite(value):
            raise ValueError("value must be a finite number")
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
