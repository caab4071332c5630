"""Live liability: the service credit an agreement would owe for the period in
progress, at today's attainment and at the current burn extrapolated to period end.

For each ratio and quantile objective measured so far (over all its groups):

- ``now``: the credit tier its attainment to date reaches (what the report says);
- ``projected``: the period's remaining time brings as many valid events per minute as
  the period so far did, with the share of good ones of the last
  :data:`RECENT_MS` (the current burn; the period so far when the last hour had no
  events). The projected attainment is (good so far + projected good) / (valid so far
  + projected valid), and its credit tier is the projected credit.

The agreement's liability is the largest credit of its objectives, as for the report's
``credit``. A complete period has no projection: its projection is its outcome.
Pure: :func:`project` takes the report and the rollups it was built from.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # compute's Report holds a Liability: no import cycle at run time
    from services.notifier.reports.compute import Report, RollupRow
    from shared.definitions.kinds.agreement import Agreement

RECENT_MS = 3_600_000


@dataclass(frozen=True)
class ObjectiveLiability:
    objective: str
    attainment: float
    projected_attainment: float
    credit_percent: float
    projected_credit_percent: float


@dataclass(frozen=True)
class Liability:
    as_of: int
    credit_percent: float  # at today's attainment
    projected_credit_percent: float  # at the current burn, to period end
    objectives: tuple[ObjectiveLiability, ...]


def _sums(rows: Sequence[RollupRow], objective: str, start: int, stop: int) -> tuple[int, int]:
    good = valid = 0
    for row in rows:
        if row.objective == objective and start <= row.minute < stop:
            good += row.good
            valid += row.valid
    return good, valid


def projected_attainment(
    good: int, valid: int, recent_good: int, recent_valid: int, elapsed_ms: int, left_ms: int
) -> float:
    """The attainment at period end if the rest of it runs at the period's event rate
    with the recent share of good events (see the module docstring)."""
    share = recent_good / recent_valid if recent_valid else good / valid
    more_valid = valid * left_ms / elapsed_ms if elapsed_ms > 0 else 0.0
    return (good + share * more_valid) / (valid + more_valid)


def project(agreement: Agreement, report: Report, rollups: Sequence[RollupRow]) -> Liability | None:
    """The liability of ``report``'s period as of its ``now``; None once it is complete."""
    if report.complete or report.now <= report.start:
        return None
    elapsed = report.now - report.start
    left = report.end - report.now
    out = []
    for o in report.objectives:
        total = o.total
        if o.kind not in ("ratio", "quantile") or not total.valid or total.attainment is None:
            continue
        recent_good, recent_valid = _sums(rollups, o.name, report.now - RECENT_MS, report.now)
        good = total.good or 0
        projected = projected_attainment(
            good, total.valid, recent_good, recent_valid, elapsed, left
        )
        out.append(
            ObjectiveLiability(
                objective=o.name,
                attainment=total.attainment,
                projected_attainment=projected,
                credit_percent=total.credit_percent,
                projected_credit_percent=agreement.spec.credit_percent(projected, o.name),
            )
        )
    return Liability(
        as_of=report.now,
        credit_percent=max((o.credit_percent for o in out), default=0.0),
        projected_credit_percent=max((o.projected_credit_percent for o in out), default=0.0),
        objectives=tuple(out),
    )
