"""Objectives: what is measured (selection, good/valid) and how a breach is decided."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.definitions.kinds.common import Name, Spec, duration
from shared.timeutil import parse_duration_ms

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


class Alerting(Spec):
    """How a breach is decided. ``threshold``: SLI below target for ``for``."""

    policy: Literal["threshold"] = "threshold"
    for_: str = Field(default="0s", alias="for")
    min_events: int = Field(default=1, ge=1)
    severity: Literal["page", "ticket", "warning", "info"] = "page"
    hysteresis: float = Field(default=0.0, ge=0.0, lt=1.0)

    _for_ok = field_validator("for_")(duration)


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

    _window_ok = field_validator("window")(duration)

    @property
    def window_ms(self) -> int:
        return parse_duration_ms(self.window)


Objective = RatioObjective
