"""Objectives: what is measured and how a breach is decided.

Four kinds, told apart by ``kind`` (a discriminated union, :data:`Objective`):

* ``ratio``: good / valid events ≥ ``target`` over ``window``;
* ``quantile``: the ``quantile`` of ``value`` over ``window`` ≤ ``threshold``;
* ``deadline``: per ``entity``, a clock started, paused, resumed and stopped by event
  types must stop within a target (per attribute value), optionally in business time
  of a Calendar;
* ``freshness``: a matching event at least every ``maxSilence``.

A window is rolling (a duration: ``5m``, ``30d``) or calendar (``week``, ``month``,
``quarter``, aligned in ``timezone``; weeks start on Monday).
"""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from shared.definitions.kinds.calendar import timezone_name
from shared.definitions.kinds.common import Name, Spec, duration, given
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


CALENDAR_WINDOWS = ("week", "month", "quarter")
CalendarPeriod = Literal["week", "month", "quarter"]


def window_text(text: str) -> str:
    """Field validator: a rolling duration (``30d``) or a calendar period (``month``)."""
    if text not in CALENDAR_WINDOWS:
        duration(text)
    return text


class BurnRateRule(Spec):
    """Fire ``severity`` when the burn rate is ≥ ``factor`` over both windows."""

    severity: Literal["page", "ticket"]
    factor: float = Field(gt=0.0)
    long: str
    short: str

    _durations_ok = field_validator("long", "short")(duration)

    @model_validator(mode="after")
    def _short_shorter(self) -> BurnRateRule:
        if parse_duration_ms(self.short) >= parse_duration_ms(self.long):
            raise ValueError("'short' must be shorter than 'long'")
        return self

    @property
    def name(self) -> str:
        """``"page-1h-5m"``: names the rule in burn-rate maps."""
        return f"{self.severity}-{self.long}-{self.short}"


#: The SRE workbook's multiwindow, multi-burn-rate defaults (chapter 5, table 5-8).
DEFAULT_BURN_RATES: tuple[BurnRateRule, ...] = (
    BurnRateRule(severity="page", factor=14.4, long="1h", short="5m"),
    BurnRateRule(severity="page", factor=6.0, long="6h", short="30m"),
    BurnRateRule(severity="ticket", factor=1.0, long="3d", short="6h"),
)


class Alerting(Spec):
    """How a breach is decided.

    ``threshold``: the SLI is past the target for ``for`` (severity ``severity``).
    ``burn-rate``: any of ``burnRates`` (default :data:`DEFAULT_BURN_RATES`) fires; the
    breach takes the highest firing severity. Both need ``minEvents`` valid events in
    the window judged; ``hysteresis`` widens the way back (threshold: the SLI must
    reach ``target + hysteresis``; burn-rate: the long window's burn rate must fall
    below ``factor * (1 - hysteresis)``).
    """

    policy: Literal["threshold", "burn-rate"] = "threshold"
    for_: str = Field(default="0s", alias="for")
    min_events: int = Field(default=1, ge=1)
    severity: Literal["page", "ticket", "warning", "info"] = "page"
    hysteresis: float = Field(default=0.0, ge=0.0, lt=1.0)
    burn_rates: list[BurnRateRule] | None = None

    _for_ok = field_validator("for_")(duration)

    def field_checks(self) -> list[tuple[str, str]]:
        """Fields written for the other policy, which this one would ignore."""
        out: list[tuple[str, str]] = []
        if self.policy == "burn-rate":
            if given(self, "for_"):
                out.append(
                    (
                        "for",
                        "'for' does not apply to policy 'burn-rate' (it is how long a "
                        "threshold breach must hold): a burn-rate rule opens a breach when "
                        "both its long and short windows burn past its factor, so its short "
                        "window already confirms it; remove 'for'",
                    )
                )
            if given(self, "severity"):
                out.append(
                    (
                        "severity",
                        "'severity' does not apply to policy 'burn-rate': each rule carries "
                        "its own (page or ticket) and the breach takes the highest firing "
                        "one; remove 'severity', or set 'severity' on rules in burnRates",
                    )
                )
        elif given(self, "burn_rates"):
            out.append(
                (
                    "burnRates",
                    "'burnRates' does not apply to policy 'threshold' (which fires on the "
                    "SLI against the target); write policy: burn-rate to use them, or "
                    "remove 'burnRates'",
                )
            )
        return out

    @property
    def rules(self) -> tuple[BurnRateRule, ...]:
        """The burn-rate rules in force (empty under ``threshold``)."""
        if self.policy != "burn-rate":
            return ()
        return tuple(self.burn_rates) if self.burn_rates else DEFAULT_BURN_RATES


class _Windowed(Spec):
    """A window: rolling duration or calendar period in ``timezone``."""

    window: str
    timezone: str = "UTC"

    _window_ok = field_validator("window")(window_text)
    _tz_ok = field_validator("timezone")(timezone_name)

    def field_checks(self) -> list[tuple[str, str]]:
        """``timezone`` aligns calendar windows; a rolling window ignores it."""
        if self.calendar_window is None and given(self, "timezone"):
            return [
                (
                    "timezone",
                    f"'timezone' does not apply to the rolling window {self.window!r}: it "
                    "aligns calendar windows (week, month, quarter) to local midnight; "
                    "remove 'timezone', or use a calendar window",
                )
            ]
        return []

    @property
    def calendar_window(self) -> CalendarPeriod | None:
        match self.window:
            case "week" | "month" | "quarter" as period:
                return period
            case _:
                return None

    @property
    def window_ms(self) -> int:
        """The rolling window's length; a calendar window's longest period."""
        match self.calendar_window:
            case "week":
                return 7 * 86_400_000
            case "month":
                return 31 * 86_400_000
            case "quarter":
                return 92 * 86_400_000
            case _:
                return parse_duration_ms(self.window)


class RatioObjective(_Windowed):
    """good / valid ≥ target over a rolling or calendar window."""

    name: Name
    kind: Literal["ratio"]
    service: str
    select: Selector = Field(default_factory=Selector)
    good: GoodSpec
    target: float = Field(gt=0.0, lt=1.0)
    group_by: list[str] = Field(default_factory=list)
    alerting: Alerting = Field(default_factory=Alerting)

    @model_validator(mode="after")
    def _calendar_needs_burn_rate(self) -> RatioObjective:
        if self.calendar_window and self.alerting.policy == "threshold":
            raise ValueError(
                "a calendar window needs alerting.policy 'burn-rate' (the burn-rate "
                "windows roll; the calendar window measures the error budget)"
            )
        return self


class QuantileObjective(_Windowed):
    """The ``quantile`` of ``value`` over a rolling window ≤ ``threshold``."""

    name: Name
    kind: Literal["quantile"]
    service: str
    select: Selector = Field(default_factory=Selector)
    quantile: float = Field(gt=0.0, lt=1.0)
    threshold: float
    group_by: list[str] = Field(default_factory=list)
    alerting: Alerting = Field(default_factory=Alerting)

    @model_validator(mode="after")
    def _rolling_threshold(self) -> QuantileObjective:
        if self.calendar_window:
            raise ValueError("a quantile objective needs a rolling window")
        if self.alerting.policy != "threshold":
            raise ValueError("a quantile objective supports alerting.policy 'threshold' only")
        return self


class DeadlineObjective(Spec):
    """Per entity, the time from ``start`` to ``stop`` (minus pauses) within a target.

    ``targets`` maps values of the ``targetBy`` attribute to durations (e.g. priority
    P1 → 15m); ``target`` applies to other values. ``calendar`` names a Calendar whose
    working hours the clock runs in (none: all the time).
    """

    name: Name
    kind: Literal["deadline"]
    service: str
    select: Selector = Field(default_factory=Selector)
    start: list[str] = Field(min_length=1)
    stop: list[str] = Field(min_length=1)
    pause: list[str] = Field(default_factory=list)
    resume: list[str] = Field(default_factory=list)
    target_by: str | None = None
    targets: dict[str, str] = Field(default_factory=dict)
    target: str | None = None
    calendar: Name | None = None
    warnings: list[Annotated[float, Field(gt=0.0, lt=1.0)]] = Field(
        default_factory=lambda: [0.5, 0.75, 0.9]
    )
    group_by: list[str] = Field(default_factory=list)
    severity: Literal["page", "ticket", "warning", "info"] = "page"

    _target_ok = field_validator("target")(lambda t: t if t is None else duration(t))

    @field_validator("targets")
    @classmethod
    def _targets_ok(cls, targets: dict[str, str]) -> dict[str, str]:
        for text in targets.values():
            duration(text)
        return targets

    @model_validator(mode="after")
    def _has_target(self) -> DeadlineObjective:
        if self.target is None and not self.targets:
            raise ValueError("give 'target' or 'targets'")
        if self.targets and self.target_by is None:
            raise ValueError("'targets' needs 'targetBy' (the attribute they are keyed by)")
        return self

    def field_checks(self) -> list[tuple[str, str]]:
        """A selection that hides the clock's own events; fields that do nothing."""
        out: list[tuple[str, str]] = []
        roles = (("start", self.start), ("stop", self.stop), ("pause", self.pause),
                 ("resume", self.resume))  # fmt: skip
        if self.select.types:
            chosen = set(self.select.types)
            left_out = [(role, t) for role, types in roles for t in types if t not in chosen]
            if left_out:
                listed = ", ".join(f"{t!r} ({role})" for role, t in left_out)
                effect = {
                    "start": "never start",
                    "stop": "never stop",
                    "pause": "never pause",
                    "resume": "never resume",
                }
                effects = ", ".join(dict.fromkeys(effect[role] for role, _ in left_out))
                out.append(
                    (
                        "select.types",
                        f"select.types leaves out the clock's own event types {listed}: "
                        f"those events are never seen, so clocks would {effects}; add them "
                        "to select.types, or remove select.types (then every event type "
                        "of the service is seen and the clock acts on its own types only)",
                    )
                )
        seen: dict[str, str] = {}
        for role, types in roles:
            for t in types:
                if t in seen and seen[t] != role:
                    out.append(
                        (
                            role,
                            f"event type {t!r} is in both {seen[t]!r} and {role!r}: an "
                            "event type does one thing to the clock; keep it in one list",
                        )
                    )
                seen.setdefault(t, role)
        if self.resume and not self.pause:
            out.append(
                (
                    "resume",
                    "'resume' does not apply without 'pause': it restarts a paused clock, "
                    "and nothing pauses one; add pause types, or remove 'resume'",
                )
            )
        if self.target_by is not None and not self.targets:
            out.append(
                (
                    "targetBy",
                    f"'targetBy' does not apply without 'targets': it names the attribute "
                    f"({self.target_by!r}) whose values key 'targets'; add targets, or "
                    "remove 'targetBy'",
                )
            )
        return out

    def target_ms(self, attributes: dict[str, str]) -> int | None:
        """The target for an entity with these attributes; ``None``: not measured."""
        if self.target_by is not None and attributes.get(self.target_by) in self.targets:
            return parse_duration_ms(self.targets[attributes[self.target_by]])
        return None if self.target is None else parse_duration_ms(self.target)


class FreshnessObjective(Spec):
    """A matching event at least every ``maxSilence``; a breach while it is silent."""

    name: Name
    kind: Literal["freshness"]
    service: str
    select: Selector = Field(default_factory=Selector)
    max_silence: str
    group_by: list[str] = Field(default_factory=list)
    #: Groups whose silence counts from the objective's activation even if they never
    #: send an event (e.g. ``[{customer: acme}]``): each names every ``groupBy``
    #: attribute. An ungrouped objective always counts from its activation.
    expected_groups: list[dict[str, str]] = Field(default_factory=list, max_length=1000)
    severity: Literal["page", "ticket", "warning", "info"] = "page"

    _silence_ok = field_validator("max_silence")(duration)

    @model_validator(mode="after")
    def _expected_groups_ok(self) -> FreshnessObjective:
        if self.expected_groups and not self.group_by:
            raise ValueError(
                "'expectedGroups' needs 'groupBy' (an ungrouped objective already "
                "counts its silence from activation)"
            )
        wanted = sorted(set(self.group_by))
        known: set[tuple[tuple[str, str], ...]] = set()
        for index, group in enumerate(self.expected_groups):
            if sorted(group) != wanted:
                raise ValueError(
                    f"expectedGroups[{index}] must give a value for each groupBy attribute "
                    f"({', '.join(wanted)}) and nothing else; it gives {', '.join(sorted(group))}"
                )
            entry = tuple(sorted(group.items()))
            if entry in known:
                raise ValueError(f"expectedGroups[{index}] repeats an earlier group")
            known.add(entry)
        return self

    @property
    def max_silence_ms(self) -> int:
        return parse_duration_ms(self.max_silence)


Objective = Annotated[
    RatioObjective | QuantileObjective | DeadlineObjective | FreshnessObjective,
    Field(discriminator="kind"),
]
