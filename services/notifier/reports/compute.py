"""One agreement's report for one period, from stored counts and breaches (pure).

Inputs, all already read from the database:

* per-minute rollups (:class:`RollupRow`) of the ratio and quantile objectives, from
  the start of the oldest period the termination rule looks at to the report's end;
* the breaches overlapping the report period (:class:`BreachSpan`);
* the maintenance windows marked ``excludeFromCompliance`` (:class:`Exclusion`).

Timeline of one ratio objective over a month with a maintenance window W::

    start                 W                                  now        end
      |-------------[xxxxxxxxxx]----------B1=====B1--------------|·········|
      minutes inside W are left out of good and valid; B1 is a breach, its
      duration clipped to [start, min(end, now)); the rest of the month has
      not happened yet (``complete`` is false).

Formulas (docs/reports.md has the prose):

* attainment = Σ good / Σ valid over the minutes of the period not excluded;
  a quantile objective's good count is "value within the threshold" and its target
  is the quantile (p99 ≤ 300 ms holds exactly when ≥ 99 % of values are ≤ 300 ms);
* met = attainment ≥ target; error budget used = (1 - attainment) / (1 - target),
  not capped (1.0 = the whole budget, above 1 = overspent);
* credit owed = the largest ``creditPercent`` among the penalty tiers reached by any
  objective's attainment over all its groups (``AgreementSpec.credit_percent``:
  a tier naming an objective applies to that one only); the lowest tier reached wins;
* a period is missed when any ratio or quantile objective is missed; a period without
  any valid event is not measured and ends a run of missed periods;
* freshness: attainment = 1 - breached time / measured time (no target: it decides
  neither met nor credits); deadline: not measured (see :data:`DEADLINE_REASON`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from services.notifier.reports import periods
from services.notifier.reports.liability import Liability
from services.notifier.reports.tree import Tree
from shared.definitions.kinds.agreement import Agreement
from shared.definitions.kinds.objectives import (
    DeadlineObjective,
    FreshnessObjective,
    QuantileObjective,
    RatioObjective,
)

MINUTE_MS = 60_000

DEADLINE_REASON = (
    "not measured: the share of entities that met their deadline needs every stopped "
    "entity, but only the ones that missed are stored (as breaches); the breaches of "
    "the period are listed"
)
ObjectiveKind = Literal["ratio", "quantile", "deadline", "freshness"]


@dataclass(frozen=True)
class RollupRow:
    """Good and valid events of one objective and group in one minute."""

    objective: str  # the objective's name inside the agreement
    group_key: str
    group: Mapping[str, str]
    minute: int
    good: int
    valid: int


@dataclass(frozen=True)
class BreachSpan:
    """One breach of one of the agreement's objectives (``resolved_at`` None: open)."""

    id: str
    objective: str
    group: Mapping[str, Any]
    severity: str
    opened_at: int
    resolved_at: int | None


@dataclass(frozen=True)
class Exclusion:
    """A maintenance window that excludes its time from compliance."""

    source: str  # "MaintenanceWindow/<name>"
    match: Mapping[str, str]
    start: int
    end: int


@dataclass(frozen=True)
class BreachReport:
    id: str
    group: Mapping[str, Any]
    severity: str
    opened_at: int
    resolved_at: int | None
    duration_ms: int  # inside the period, up to ``now``
    open_at_end: bool  # still open at the period end (or now, if earlier)


@dataclass(frozen=True)
class SeriesReport:
    """One objective over all its groups, or one group of it."""

    group: Mapping[str, Any]
    good: int | None
    valid: int | None
    excluded_valid: int | None
    attainment: float | None
    met: bool | None
    error_budget_used: float | None
    credit_percent: float
    breached_ms: int
    breaches: tuple[BreachReport, ...]


@dataclass(frozen=True)
class ObjectiveReport:
    name: str
    kind: ObjectiveKind
    service: str
    target: float | None
    target_text: str
    measured: bool
    reason: str | None
    total: SeriesReport
    groups: tuple[SeriesReport, ...]
    exclusions: tuple[str, ...]


@dataclass(frozen=True)
class PeriodStatus:
    label: str
    start: int
    end: int
    missed: bool | None  # None: nothing measured


@dataclass(frozen=True)
class Credit:
    percent: float
    objective: str | None  # the objective whose attainment reached the tier
    attainment: float | None


@dataclass(frozen=True)
class Termination:
    consecutive_missed_periods: int
    rule: int | None  # the agreement's consecutiveMissedPeriods
    at_risk: bool
    history: tuple[PeriodStatus, ...]  # newest first, this period included


@dataclass(frozen=True)
class Report:
    agreement: str
    type: str
    provider: str | None
    consumer: str | None
    every: str
    timezone: str
    label: str
    start: int
    end: int
    now: int
    complete: bool
    objectives: tuple[ObjectiveReport, ...]
    credit: Credit
    missed: bool | None
    termination: Termination
    notes: tuple[str, ...] = field(default=())
    #: an SLA's OLAs and UCs (``services.notifier.reports.tree``); None for an OLA/UC
    tree: Tree | None = None
    #: the credit owed now and projected to period end (``.liability``); None once the
    #: period is complete
    liability: Liability | None = None


def lookback_start(agreement: Agreement, start: int) -> int:
    """The start of the oldest period the termination rule needs (rollups from there)."""
    for _ in range(_periods_back(agreement)):
        start, _end = periods.previous(
            start, agreement.spec.period.every, agreement.spec.period.timezone
        )
    return start


def _periods_back(agreement: Agreement) -> int:
    rule = agreement.spec.termination
    return 0 if rule is None else rule.consecutive_missed_periods - 1


def _value(
    agreement: Agreement, objective: str, service: str, group: Mapping[str, Any], key: str
) -> str | None:
    spec = agreement.spec
    known = {
        "agreement": agreement.metadata.name,
        "agreement_type": spec.type,
        "provider": spec.provider,
        "consumer": spec.consumer,
        "service": service,
        "objective": objective,
    }
    if key in known:
        return known[key]
    value = group.get(key)
    return None if value is None else str(value)


def _holds(
    match: Mapping[str, str],
    agreement: Agreement,
    objective: str,
    service: str,
    group: Mapping[str, Any],
) -> bool:
    """The routing matchers as far as a series of counts knows them: a key only a breach
    has (severity, kind, labels) never holds, as a key the breach lacks in routing."""
    for key, want in match.items():
        if key == "party":
            if want not in (agreement.spec.provider, agreement.spec.consumer):
                return False
        elif _value(agreement, objective, service, group, key) != want:
            return False
    return True


def applicable(
    agreement: Agreement,
    objective: str,
    service: str,
    group: Mapping[str, Any],
    windows: Iterable[Exclusion],
) -> list[Exclusion]:
    """The windows whose time does not count for this series: the agreement must say
    ``maintenance.exclude``, and both the window's and the agreement's matchers hold."""
    policy = agreement.spec.maintenance
    if policy is None or not policy.exclude:
        return []
    return [
        w
        for w in windows
        if _holds(w.match, agreement, objective, service, group)
        and _holds(policy.match, agreement, objective, service, group)
    ]


def minute_excluded(minute: int, merged: Iterable[tuple[int, int]]) -> bool:
    """A minute is excluded when it lies wholly inside the windows' union (``merged``:
    sorted, non-overlapping): then all its counts are from maintenance time."""
    return any(s <= minute and minute + MINUTE_MS <= e for s, e in merged)


@dataclass
class _Counts:
    good: int = 0
    valid: int = 0
    excluded_valid: int = 0


def _count(rows: Iterable[RollupRow], windows: Sequence[Exclusion]) -> _Counts:
    merged = _union_ms((w.start, w.end) for w in windows)
    counts = _Counts()
    for row in rows:
        if merged and minute_excluded(row.minute, merged):
            counts.excluded_valid += row.valid
        else:
            counts.good += row.good
            counts.valid += row.valid
    return counts


def _budget_used(attainment: float | None, target: float | None) -> float | None:
    if attainment is None or target is None:
        return None
    return (1.0 - attainment) / (1.0 - target)


def _clip(start: int, end: int, lo: int, hi: int) -> tuple[int, int] | None:
    s, e = max(start, lo), min(end, hi)
    return (s, e) if e > s else None


def _union_ms(intervals: Iterable[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for s, e in sorted(intervals):
        if merged and s <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], e))
        else:
            merged.append((s, e))
    return merged


def _length(intervals: Iterable[tuple[int, int]]) -> int:
    return sum(e - s for s, e in intervals)


def _minus(intervals: list[tuple[int, int]], cut: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """``intervals`` without ``cut`` (both merged and sorted)."""
    out: list[tuple[int, int]] = []
    for s, e in intervals:
        pieces = [(s, e)]
        for cs, ce in cut:
            pieces = [
                p
                for ps, pe in pieces
                for p in ((ps, min(pe, cs)), (max(ps, ce), pe))
                if p[1] > p[0]
            ]
        out.extend(pieces)
    return out


def _breach_reports(
    breaches: Iterable[BreachSpan], start: int, stop: int
) -> tuple[tuple[BreachReport, ...], list[tuple[int, int]]]:
    """The breaches with time inside ``[start, stop)``, and that time as intervals."""
    out: list[BreachReport] = []
    spans: list[tuple[int, int]] = []
    for b in sorted(breaches, key=lambda b: (b.opened_at, b.id)):
        ends = stop if b.resolved_at is None else b.resolved_at
        clipped = _clip(b.opened_at, ends, start, stop)
        if clipped is None and not (start <= b.opened_at < stop):
            continue
        duration = 0 if clipped is None else clipped[1] - clipped[0]
        if clipped is not None:
            spans.append(clipped)
        out.append(
            BreachReport(
                id=b.id,
                group=b.group,
                severity=b.severity,
                opened_at=b.opened_at,
                resolved_at=b.resolved_at,
                duration_ms=duration,
                open_at_end=b.resolved_at is None or b.resolved_at > stop,
            )
        )
    return tuple(out), spans


def _group_key(group: Mapping[str, Any]) -> tuple[tuple[str, str], ...]:
    return tuple(sorted((k, str(v)) for k, v in group.items()))


class _Builder:
    """The report of one period; ``stop`` = min(end, now) bounds breach time."""

    def __init__(
        self,
        agreement: Agreement,
        start: int,
        end: int,
        now: int,
        windows: Sequence[Exclusion],
    ) -> None:
        self.agreement = agreement
        self.start, self.end = start, end
        self.stop = max(start, min(end, now))
        self.windows = windows

    def counted(
        self,
        objective: RatioObjective | QuantileObjective,
        rows: Sequence[RollupRow],
        breaches: Sequence[BreachSpan],
    ) -> ObjectiveReport:
        target = objective.target if isinstance(objective, RatioObjective) else objective.quantile
        by_group: dict[tuple[tuple[str, str], ...], tuple[Mapping[str, Any], list[RollupRow]]] = {}
        for row in rows:
            by_group.setdefault(_group_key(row.group), (row.group, []))[1].append(row)
        for b in breaches:
            by_group.setdefault(_group_key(b.group), (b.group, []))
        groups: list[SeriesReport] = []
        total = _Counts()
        used: set[str] = set()
        for key in sorted(by_group):
            group, group_rows = by_group[key]
            windows = applicable(
                self.agreement, objective.name, objective.service, group, self.windows
            )
            used.update(w.source for w in windows)
            counts = _count(group_rows, windows)
            total.good += counts.good
            total.valid += counts.valid
            total.excluded_valid += counts.excluded_valid
            mine = [b for b in breaches if _group_key(b.group) == key]
            groups.append(self._series(objective.name, group, counts, target, mine))
        total_series = self._series(objective.name, {}, total, target, breaches)
        if isinstance(objective, RatioObjective):
            text = f"{target:.6g} of valid events good"
        else:
            text = f"p{objective.quantile * 100:g} ≤ {objective.threshold:g}"
        return ObjectiveReport(
            name=objective.name,
            kind=objective.kind,
            service=objective.service,
            target=target,
            target_text=text,
            measured=total.valid > 0,
            reason=None if total.valid > 0 else "no valid events in the period",
            total=total_series,
            groups=tuple(groups) if objective.group_by else (),
            exclusions=tuple(sorted(used)),
        )

    def _series(
        self,
        objective: str,
        group: Mapping[str, Any],
        counts: _Counts,
        target: float,
        breaches: Sequence[BreachSpan],
    ) -> SeriesReport:
        attainment = counts.good / counts.valid if counts.valid else None
        reports, spans = _breach_reports(breaches, self.start, self.stop)
        return SeriesReport(
            group=group,
            good=counts.good,
            valid=counts.valid,
            excluded_valid=counts.excluded_valid,
            attainment=attainment,
            met=None if attainment is None else attainment >= target,
            error_budget_used=_budget_used(attainment, target),
            credit_percent=(
                0.0
                if attainment is None
                else self.agreement.spec.credit_percent(attainment, objective)
            ),
            breached_ms=_length(_union_ms(spans)),
            breaches=reports,
        )

    def timed(
        self, objective: DeadlineObjective | FreshnessObjective, breaches: Sequence[BreachSpan]
    ) -> ObjectiveReport:
        by_group: dict[tuple[tuple[str, str], ...], list[BreachSpan]] = {}
        for b in breaches:
            by_group.setdefault(_group_key(b.group), []).append(b)
        used: set[str] = set()
        groups = []
        for key in sorted(by_group):
            series, sources = self._timed_series(objective, by_group[key][0].group, by_group[key])
            used.update(sources)
            groups.append(series)
        total, sources = self._timed_series(objective, {}, breaches)
        used.update(sources)
        if isinstance(objective, FreshnessObjective):
            measured = self.stop > self.start
            reason = None if measured else "the period has not started"
            text = f"an event at least every {objective.max_silence}"
        else:
            measured, reason = False, DEADLINE_REASON
            text = "each entity stopped within its target"
        return ObjectiveReport(
            name=objective.name,
            kind=objective.kind,
            service=objective.service,
            target=None,
            target_text=text,
            measured=measured,
            reason=reason,
            total=total,
            groups=tuple(groups) if objective.group_by else (),
            exclusions=tuple(sorted(used)) if measured else (),
        )

    def _timed_series(
        self,
        objective: DeadlineObjective | FreshnessObjective,
        group: Mapping[str, Any],
        breaches: Sequence[BreachSpan],
    ) -> tuple[SeriesReport, list[str]]:
        reports, spans = _breach_reports(breaches, self.start, self.stop)
        attainment: float | None = None
        sources: list[str] = []
        breached = _union_ms(spans)
        if isinstance(objective, FreshnessObjective) and self.stop > self.start:
            windows = applicable(
                self.agreement, objective.name, objective.service, group, self.windows
            )
            sources = [w.source for w in windows]
            cut = _union_ms(
                c for w in windows if (c := _clip(w.start, w.end, self.start, self.stop))
            )
            base = self.stop - self.start - _length(cut)
            breached = _minus(breached, cut)
            attainment = 1.0 - _length(breached) / base if base > 0 else None
        return (
            SeriesReport(
                group=group,
                good=None,
                valid=None,
                excluded_valid=None,
                attainment=attainment,
                met=None,
                error_budget_used=None,
                credit_percent=0.0,
                breached_ms=_length(breached),
                breaches=reports,
            ),
            sources,
        )

    def objectives(
        self, rows: Sequence[RollupRow], breaches: Sequence[BreachSpan]
    ) -> tuple[ObjectiveReport, ...]:
        out = []
        for objective in self.agreement.spec.objectives:
            mine = [b for b in breaches if b.objective == objective.name]
            if isinstance(objective, RatioObjective | QuantileObjective):
                counted = [
                    r
                    for r in rows
                    if r.objective == objective.name and self.start <= r.minute < self.end
                ]
                out.append(self.counted(objective, counted, mine))
            else:
                out.append(self.timed(objective, mine))
        return tuple(out)


def _missed(objectives: Iterable[ObjectiveReport]) -> bool | None:
    decided = [o.total.met for o in objectives if o.total.met is not None]
    return None if not decided else not all(decided)


def _credit(agreement: Agreement, objectives: Iterable[ObjectiveReport]) -> Credit:
    best = Credit(percent=0.0, objective=None, attainment=None)
    for o in objectives:
        if o.total.credit_percent > best.percent:
            best = Credit(o.total.credit_percent, o.name, o.total.attainment)
    return best


def build_report(
    agreement: Agreement,
    start: int,
    end: int,
    *,
    now: int,
    rollups: Sequence[RollupRow],
    breaches: Sequence[BreachSpan],
    windows: Sequence[Exclusion] = (),
) -> Report:
    """The report of ``[start, end)``; ``rollups`` from :func:`lookback_start` on."""
    every = agreement.spec.period.every
    timezone = agreement.spec.period.timezone
    current = _Builder(agreement, start, end, now, windows)
    objectives = current.objectives(rollups, breaches)
    missed = _missed(objectives)
    history = [PeriodStatus(periods.label(start, every, timezone), start, end, missed)]
    previous_start = start
    for _ in range(_periods_back(agreement)):
        p_start, p_end = periods.previous(previous_start, every, timezone)
        previous_start = p_start
        past = _Builder(agreement, p_start, p_end, now, windows)
        # Breaches do not decide met or missed: only the counts are needed.
        past_missed = _missed(past.objectives(rollups, []))
        history.append(
            PeriodStatus(periods.label(p_start, every, timezone), p_start, p_end, past_missed)
        )
    run = 0
    for status in history:
        if status.missed is not True:
            break
        run += 1
    rule = agreement.spec.termination
    n = None if rule is None else rule.consecutive_missed_periods
    spec = agreement.spec
    return Report(
        agreement=agreement.metadata.name,
        type=spec.type,
        provider=spec.provider,
        consumer=spec.consumer,
        every=every,
        timezone=timezone,
        label=periods.label(start, every, timezone),
        start=start,
        end=end,
        now=now,
        complete=now >= end,
        objectives=objectives,
        credit=_credit(agreement, objectives),
        missed=missed,
        termination=Termination(
            consecutive_missed_periods=run,
            rule=n,
            at_risk=n is not None and run >= n,
            history=tuple(history),
        ),
    )
