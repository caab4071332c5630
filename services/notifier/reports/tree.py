"""An SLA's agreement tree in its report: the OLAs and UCs that underpin it.

An OLA (between teams) or a UC (with a supplier) names the SLA it ``underpins``. The
SLA's report then shows, for the same period bounds as the SLA's:

- each underpinning agreement with its attainment per objective, met or missed, and
  its credit;
- for every SLA breach, the underpinning breaches that overlapped it and the time of
  the overlap (inside the period, up to ``now``): the minutes attributable to each
  team or supplier;
- the credit owed to the customer (the SLA's) next to the credits owed by suppliers
  (the UCs') for the period: what a missed month costs, and what comes back.

Pure: the caller passes the reports (``services.notifier.reports.store`` builds them).
Only OLAs and UCs underpin, and only an SLA (definition checks), so the tree is one
level deep.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # compute's Report holds a Tree: no import cycle at run time
    from services.notifier.reports.compute import BreachReport, Report


@dataclass(frozen=True)
class ObjectiveAttainment:
    objective: str
    attainment: float | None
    target: float | None
    met: bool | None


@dataclass(frozen=True)
class Underpinning:
    """One OLA or UC under the SLA, over the SLA's period."""

    agreement: str
    type: str
    provider: str | None
    consumer: str | None
    missed: bool | None
    credit_percent: float
    objectives: tuple[ObjectiveAttainment, ...]


@dataclass(frozen=True)
class Attribution:
    """An underpinning breach that overlapped an SLA breach, and for how long."""

    breach: str  # the SLA's breach
    objective: str  # the SLA objective it breached
    agreement: str  # the underpinning agreement
    underpinning_breach: str
    underpinning_objective: str
    overlap_ms: int


@dataclass(frozen=True)
class SupplierCredit:
    agreement: str
    provider: str | None
    percent: float


@dataclass(frozen=True)
class Tree:
    underpinned_by: tuple[Underpinning, ...]
    attributions: tuple[Attribution, ...]
    #: the SLA's credit: what the provider owes its customer for the period
    credit_owed_to_customer: float
    #: the UCs' credits: what suppliers owe the provider for the same period
    credits_owed_by_suppliers: tuple[SupplierCredit, ...]


def _breaches(report: Report) -> Iterable[tuple[str, BreachReport]]:
    """Every breach of the report once (an objective lists each under its group)."""
    seen: set[str] = set()
    for objective in report.objectives:
        for series in (objective.total, *objective.groups):
            for breach in series.breaches:
                if breach.id not in seen:
                    seen.add(breach.id)
                    yield objective.name, breach


def _span(breach: BreachReport, report: Report) -> tuple[int, int]:
    """The breach inside the period, up to ``now``."""
    until = min(report.end, report.now)
    end = until if breach.resolved_at is None else min(breach.resolved_at, until)
    return max(breach.opened_at, report.start), end


def overlap_ms(a: tuple[int, int], b: tuple[int, int]) -> int:
    return max(0, min(a[1], b[1]) - max(a[0], b[0]))


def underpinning(report: Report) -> Underpinning:
    return Underpinning(
        agreement=report.agreement,
        type=report.type,
        provider=report.provider,
        consumer=report.consumer,
        missed=report.missed,
        credit_percent=report.credit.percent,
        objectives=tuple(
            ObjectiveAttainment(o.name, o.total.attainment, o.target, o.total.met)
            for o in report.objectives
        ),
    )


def build_tree(sla: Report, under: Sequence[Report]) -> Tree:
    """The tree of ``sla`` from the reports of the agreements that underpin it (each
    built over the SLA's period bounds)."""
    attributions = []
    for objective, breach in _breaches(sla):
        span = _span(breach, sla)
        for other in sorted(under, key=lambda r: r.agreement):
            for other_objective, other_breach in _breaches(other):
                shared_ms = overlap_ms(span, _span(other_breach, other))
                if shared_ms > 0:
                    attributions.append(
                        Attribution(
                            breach=breach.id,
                            objective=objective,
                            agreement=other.agreement,
                            underpinning_breach=other_breach.id,
                            underpinning_objective=other_objective,
                            overlap_ms=shared_ms,
                        )
                    )
    ordered = sorted(under, key=lambda r: (r.type, r.agreement))
    return Tree(
        underpinned_by=tuple(underpinning(r) for r in ordered),
        attributions=tuple(attributions),
        credit_owed_to_customer=sla.credit.percent,
        credits_owed_by_suppliers=tuple(
            SupplierCredit(r.agreement, r.provider, r.credit.percent)
            for r in ordered
            if r.type == "UC"
        ),
    )
