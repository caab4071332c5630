"""Agreements: SLA, OLA or UC between parties, with objectives, reporting period,
service credits, a termination rule, maintenance exclusion and a notification policy.

* ``SLA``: a provider promises a customer; ``OLA``: one internal team promises
  another; ``UC`` (underpinning contract): a supplier promises the provider. An OLA or
  UC may name the SLA it ``underpins``.
* ``period``: compliance is reported per calendar ``week``, ``month`` or ``quarter``
  in ``timezone``.
* ``penalties``: attainment below ``below`` earns ``creditPercent`` service credit;
  the lowest tier reached applies. Tiers are listed from the highest ``below`` down,
  each crediting more than the one before.
* ``termination``: ``consecutiveMissedPeriods`` missed periods in a row put the
  agreement at risk of termination.
* ``maintenance``: whether time inside matching maintenance windows is excluded from
  compliance.
"""

from __future__ import annotations

import difflib
from typing import Literal, get_args

from pydantic import Field, field_validator, model_validator

from shared.definitions.kinds.common import (
    AgreementRef,
    Lookup,
    Metadata,
    Name,
    PartyRef,
    Spec,
    iana_timezone,
)
from shared.definitions.kinds.objectives import Objective
from shared.definitions.kinds.policy import Route
from shared.schemas import BreachKind, Severity

AgreementType = Literal["SLA", "OLA", "UC"]


class Period(Spec):
    """The reporting period: calendar weeks (from Monday), months or quarters."""

    every: Literal["week", "month", "quarter"] = "month"
    timezone: str = "UTC"

    _tz_ok = field_validator("timezone")(iana_timezone)


class PenaltyTier(Spec):
    """Attainment below ``below`` (a fraction, 0.999 = 99.9 %) earns ``creditPercent``.

    ``objective``: the objective whose attainment counts; none: any objective.
    """

    below: float = Field(gt=0.0, le=1.0)
    credit_percent: float = Field(gt=0.0, le=100.0)
    objective: Name | None = None


class Termination(Spec):
    """The agreement is at risk after this many missed periods in a row."""

    consecutive_missed_periods: int = Field(ge=1)


class MaintenancePolicy(Spec):
    """``exclude``: time inside MaintenanceWindows marked ``excludeFromCompliance``
    whose ``match`` covers this agreement's breaches (restricted further to windows
    matching ``match`` here, when given) does not count against compliance."""

    exclude: bool = True
    match: dict[str, str] = Field(default_factory=dict)

    def field_checks(self) -> list[tuple[str, str]]:
        """``match`` narrows what is excluded; with ``exclude: false`` nothing is."""
        if not self.exclude and self.match:
            return [
                (
                    "match",
                    "'match' does not apply with exclude: false: it narrows which "
                    "maintenance windows are excluded from compliance, and none are; "
                    "remove 'match', or set exclude: true",
                )
            ]
        return []


class AgreementSpec(Spec):
    type: AgreementType
    provider: PartyRef | None = None
    consumer: PartyRef | None = None
    description: str | None = None
    underpins: AgreementRef | None = None
    period: Period = Field(default_factory=Period)
    objectives: list[Objective] = Field(min_length=1)
    penalties: list[PenaltyTier] = Field(default_factory=list)
    termination: Termination | None = None
    maintenance: MaintenancePolicy | None = None
    notify: list[Route] = Field(default_factory=list)

    @model_validator(mode="after")
    def _unique_objectives(self) -> AgreementSpec:
        names = [o.name for o in self.objectives]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise ValueError(f"objective names must be unique; repeated: {', '.join(duplicates)}")
        return self

    def credit_percent(self, attainment: float, objective: str | None = None) -> float:
        """The service credit owed for a period's ``attainment`` (0 if no tier applies)."""
        owed = 0.0
        for tier in self.penalties:
            if tier.objective in (None, objective) and attainment < tier.below:
                owed = max(owed, tier.credit_percent)
        return owed


class Agreement(Spec):
    api_version: Literal["slawatch/v1"] = Field(alias="apiVersion")
    kind: Literal["Agreement"]
    metadata: Metadata
    spec: AgreementSpec

    def checks(self) -> list[tuple[str, str]]:
        """Checks across fields, as (field path, message)."""
        spec = self.spec
        out: list[tuple[str, str]] = []
        if spec.underpins is not None and spec.type == "SLA":
            out.append(("spec.underpins", "only an OLA or a UC can name the SLA it underpins"))
        objectives = {o.name for o in spec.objectives}
        last: dict[str | None, tuple[int, PenaltyTier]] = {}
        for i, tier in enumerate(spec.penalties):
            if tier.objective is not None and tier.objective not in objectives:
                out.append(
                    (
                        f"spec.penalties[{i}].objective",
                        f"no objective named {tier.objective!r} in this agreement "
                        f"(it has: {', '.join(sorted(objectives))})",
                    )
                )
            previous = last.get(tier.objective)
            last[tier.objective] = (i, tier)
            if previous is None:
                continue
            j, prior = previous
            if tier.below >= prior.below:
                out.append(
                    (
                        f"spec.penalties[{i}].below",
                        f"list tiers from the highest 'below' down: {tier.below:g} follows "
                        f"{prior.below:g} (penalties[{j}])",
                    )
                )
            elif tier.credit_percent <= prior.credit_percent:
                out.append(
                    (
                        f"spec.penalties[{i}].creditPercent",
                        f"a lower attainment must earn more credit: {tier.credit_percent:g} % "
                        f"is not more than {prior.credit_percent:g} % (penalties[{j}])",
                    )
                )
        out.extend(self._route_checks())
        return out

    def _route_checks(self) -> list[tuple[str, str]]:
        """Route matchers that can never hold for this agreement's breaches."""
        spec = self.spec
        known: dict[str, tuple[str, ...]] = {
            "severity": get_args(Severity),
            "kind": get_args(BreachKind),
            "objective": tuple(o.name for o in spec.objectives),
            "service": tuple(dict.fromkeys(o.service for o in spec.objectives)),
            "agreement": (self.metadata.name,),
            "agreement_type": (spec.type,),
        }
        out: list[tuple[str, str]] = []
        for i, route in enumerate(spec.notify):
            for key, value in route.match.items():
                allowed = known.get(key)
                if allowed is None or value in allowed:
                    continue
                close = difflib.get_close_matches(value, allowed, n=1, cutoff=0.6)
                hint = f"; did you mean {close[0]!r}?" if close else ""
                out.append(
                    (
                        f"spec.notify[{i}].match.{key}",
                        f"{key} {value!r} never occurs in this agreement's breaches{hint} "
                        f"(possible: {', '.join(allowed)})",
                    )
                )
        return out

    def cross_checks(self, find: Lookup) -> list[tuple[str, str]]:
        """Checks that need other documents: ``underpins`` names an SLA."""
        if self.spec.underpins is None:
            return []
        target = find("Agreement", self.spec.underpins)
        if isinstance(target, Agreement) and target.spec.type != "SLA":
            return [
                (
                    "spec.underpins",
                    f"{self.spec.underpins!r} is an {target.spec.type}; "
                    "an OLA or UC underpins an SLA",
                )
            ]
        return []
