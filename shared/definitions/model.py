"""The definition model: the envelope and the specs of each kind.

Field names inside ``spec`` use camelCase in YAML (``groupBy``, ``minEvents``);
the Python attributes are snake_case.
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic.alias_generators import to_camel

from shared.timeutil import parse_duration_ms

API_VERSION = "slawatch/v1"
Name = Annotated[str, Field(pattern=r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")]


class Spec(BaseModel):
    model_config = ConfigDict(
        extra="forbid", frozen=True, alias_generator=to_camel, populate_by_name=True
    )


class Metadata(Spec):
    name: Name
    labels: dict[str, str] = Field(default_factory=dict)
    description: str | None = None


_CONDITION = re.compile(r"^\s*(<=|<|>=|>|==|!=)\s*(-?\d+(?:\.\d+)?)\s*$")


class ValueCondition(BaseModel):
    """``"<= 300"``: a comparison of the event's ``value`` with a number."""

    model_config = ConfigDict(frozen=True)

    op: Literal["<=", "<", ">=", ">", "==", "!="]
    threshold: float

    @classmethod
    def parse(cls, text: str) -> ValueCondition:
        match = _CONDITION.match(text)
        if match is None:
            raise ValueError(f"invalid condition {text!r}: write e.g. '<= 300'")
        return cls(op=match.group(1), threshold=float(match.group(2)))

    def holds(self, value: float) -> bool:
        t = self.threshold
        match self.op:
            case "<=":
                return value <= t
            case "<":
                return value < t
            case ">=":
                return value >= t
            case ">":
                return value > t
            case "==":
                return value == t
            case _:
                return value != t


class Selector(Spec):
    """Which events an objective counts: by type(s) and attribute equality."""

    types: list[str] = Field(default_factory=list)
    attributes: dict[str, str] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _single_type(cls, data: object) -> object:
        if isinstance(data, dict) and "type" in data:
            data = dict(data)
            single = data.pop("type")
            data["types"] = [*data.get("types", []), single]
        return data


class GoodSpec(Spec):
    """What makes a valid event good: its ``outcome`` or a condition on its ``value``."""

    outcome: Literal["good", "bad"] | None = None
    value: str | None = None

    @field_validator("value")
    @classmethod
    def _condition(cls, text: str | None) -> str | None:
        if text is not None:
            ValueCondition.parse(text)
        return text

    @model_validator(mode="after")
    def _exactly_one(self) -> GoodSpec:
        if (self.outcome is None) == (self.value is None):
            raise ValueError("give exactly one of 'outcome' or 'value'")
        return self

    def condition(self) -> ValueCondition | None:
        return ValueCondition.parse(self.value) if self.value else None


def _duration(text: str) -> str:
    parse_duration_ms(text)
    return text


class Alerting(Spec):
    """How a breach is decided. ``threshold``: SLI below target for ``for``."""

    policy: Literal["threshold"] = "threshold"
    for_: str = Field(default="0s", alias="for")
    min_events: int = Field(default=1, ge=1)
    severity: Literal["page", "ticket", "warning", "info"] = "page"
    hysteresis: float = Field(default=0.0, ge=0.0, lt=1.0)

    _for_ok = field_validator("for_")(_duration)


class RatioObjective(Spec):
    """good / valid ≥ target over a sliding event-time window."""

    name: Name
    kind: Literal["ratio"]
    service: str
    select: Selector = Field(default_factory=Selector)
    good: GoodSpec
    target: float = Field(gt=0.0, lt=1.0)
    window: str
    group_by: list[str] = Field(default_factory=list)
    alerting: Alerting = Field(default_factory=Alerting)

    _window_ok = field_validator("window")(_duration)

    @property
    def window_ms(self) -> int:
        return parse_duration_ms(self.window)


Objective = RatioObjective


class Route(Spec):
    """Send matching breach events to receivers; keys are equality matchers on severity,
    service, objective, kind and group attributes."""

    match: dict[str, str] = Field(default_factory=dict)
    receivers: list[Name] = Field(min_length=1)


class AgreementSpec(Spec):
    type: Literal["SLA", "OLA", "UC"]
    provider: str | None = None
    consumer: str | None = None
    objectives: list[Objective] = Field(min_length=1)
    notify: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_objectives(self) -> AgreementSpec:
        names = [o.name for o in self.objectives]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"objective names must be unique; repeated: {', '.join(duplicates)}")
        return self


class WebhookReceiverSpec(Spec):
    type: Literal["webhook"]
    url: str = Field(pattern=r"^https?://")
    headers: dict[str, str] = Field(default_factory=dict)


ReceiverSpec = WebhookReceiverSpec


class Agreement(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Agreement"]
    metadata: Metadata
    spec: AgreementSpec


class Receiver(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Receiver"]
    metadata: Metadata
    spec: ReceiverSpec


Document = Agreement | Receiver
KINDS: dict[str, type[Agreement] | type[Receiver]] = {"Agreement": Agreement, "Receiver": Receiver}
