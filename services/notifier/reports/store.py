"""Reading a report's inputs from PostgreSQL, then :func:`.compute.build_report`.

* the Agreement and the MaintenanceWindows from the stored definitions;
* the rollups of its ratio and quantile objectives, summed per (objective, group,
  minute) over every rollup fingerprint: each event was counted once, under the
  definition in force when it was counted (a report notes when the period mixes
  several);
* its breaches overlapping the period, only real breaches (``deadline.warning`` and
  ``budget.exhausted`` rows are notifications, not breach time).
"""

from __future__ import annotations

from dataclasses import replace

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier.reports import periods
from services.notifier.reports.compute import (
    BreachSpan,
    Exclusion,
    Report,
    RollupRow,
    build_report,
    lookback_start,
)
from services.notifier.reports.exceptions import UnknownAgreement
from services.notifier.reports.liability import project
from services.notifier.reports.tree import build_tree
from shared.definitions.kinds.agreement import Agreement
from shared.definitions.kinds.objectives import QuantileObjective, RatioObjective
from shared.definitions.kinds.silence import MaintenanceWindow
from shared.models import BreachRecord, Definition, SliRollup

BREACH_KINDS = ("breach.opened", "breach.updated", "breach.resolved")


async def agreement_named(session: AsyncSession, name: str) -> Agreement:
    row = await session.get(Definition, ("Agreement", name))
    if row is None:
        raise UnknownAgreement(name)
    return Agreement.model_validate(row.document)


async def exclusions(
    session: AsyncSession, start: int, end: int
) -> tuple[list[Exclusion], list[str]]:
    """The windows marked ``excludeFromCompliance`` overlapping ``[start, end)``, and a
    note for each stored window that no longer validates (it is not applied)."""
    rows = (
        await session.execute(select(Definition).where(Definition.kind == "MaintenanceWindow"))
    ).scalars()
    out: list[Exclusion] = []
    notes: list[str] = []
    for row in rows:
        try:
            window = MaintenanceWindow.model_validate(row.document)
        except ValueError:
            notes.append(f"MaintenanceWindow/{row.name} does not validate; not applied")
            continue
        spec = window.spec
        if spec.exclude_from_compliance and spec.start < end and spec.end > start:
            out.append(Exclusion(f"MaintenanceWindow/{row.name}", spec.match, spec.start, spec.end))
    return out, notes


async def rollups(
    session: AsyncSession, agreement: Agreement, start: int, end: int
) -> tuple[list[RollupRow], list[str]]:
    """The counted objectives' rollups in ``[start, end)``, and notes on fingerprints."""
    name = agreement.metadata.name
    counted = {
        f"{name}/{o.name}": o.name
        for o in agreement.spec.objectives
        if isinstance(o, RatioObjective | QuantileObjective)
    }
    if not counted:
        return [], []
    in_range = (
        SliRollup.objective_id.in_(counted),
        SliRollup.minute >= start,
        SliRollup.minute < end,
    )
    result = await session.execute(
        select(
            SliRollup.objective_id,
            SliRollup.group_key,
            SliRollup.group,
            SliRollup.minute,
            func.sum(SliRollup.good),
            func.sum(SliRollup.valid),
        )
        .where(*in_range)
        .group_by(SliRollup.objective_id, SliRollup.group_key, SliRollup.group, SliRollup.minute)
    )
    rows = [
        RollupRow(counted[oid], key, group, minute, int(good), int(valid))
        for oid, key, group, minute, good, valid in result
    ]
    fingerprints = await session.execute(
        select(SliRollup.objective_id, func.count(func.distinct(SliRollup.fingerprint)))
        .where(*in_range)
        .group_by(SliRollup.objective_id)
    )
    notes = [
        f"{counted[oid]}: counted under {n} definitions of what it measures in the periods read"
        for oid, n in fingerprints
        if n > 1
    ]
    return rows, sorted(notes)


async def breaches(session: AsyncSession, agreement: str, start: int, end: int) -> list[BreachSpan]:
    prefix = f"{agreement}/"
    result = await session.execute(
        select(BreachRecord).where(
            BreachRecord.agreement == agreement,
            BreachRecord.opened_at < end,
            (BreachRecord.resolved_at.is_(None)) | (BreachRecord.resolved_at > start),
            BreachRecord.last_event["kind"].astext.in_(BREACH_KINDS),
        )
    )
    return [
        BreachSpan(
            id=row.id,
            objective=row.objective_id.removeprefix(prefix),
            group=row.group,
            severity=row.severity,
            opened_at=row.opened_at,
            resolved_at=row.resolved_at,
        )
        for row in result.scalars()
        if row.objective_id.startswith(prefix)
    ]


async def report_for(session: AsyncSession, name: str, *, period: str | None, now: int) -> Report:
    """The report of agreement ``name`` for the period ``period`` names (see
    :mod:`.periods`; ``None``: the period containing ``now``)."""
    agreement = await agreement_named(session, name)
    every, timezone = agreement.spec.period.every, agreement.spec.period.timezone
    at = now if period is None else periods.instant_in(period, timezone)
    start, end = periods.bounds(at, every, timezone)
    earliest = lookback_start(agreement, start)
    rows, notes = await rollups(session, agreement, earliest, end)
    windows, window_notes = await exclusions(session, earliest, end)
    report = build_report(
        agreement,
        start,
        end,
        now=now,
        rollups=rows,
        breaches=await breaches(session, name, start, end),
        windows=windows,
    )
    report = replace(report, liability=project(agreement, report, rows))
    if agreement.spec.type == "SLA":
        under = await _underpinning_reports(session, name, start, end, now, windows)
        report = replace(report, tree=build_tree(report, under))
    return replace(report, notes=(*report.notes, *notes, *window_notes))


async def _underpinning_reports(
    session: AsyncSession,
    sla: str,
    start: int,
    end: int,
    now: int,
    windows: list[Exclusion],
) -> list[Report]:
    """The reports of the OLAs and UCs that underpin ``sla``, over its period bounds."""
    stored = (
        await session.execute(select(Definition).where(Definition.kind == "Agreement"))
    ).scalars()
    out = []
    for row in stored:
        if (row.document.get("spec") or {}).get("underpins") != sla:
            continue
        try:
            doc = Agreement.model_validate(row.document)
        except ValueError:
            continue  # what no longer validates is not reported (as for every agreement)
        if doc.spec.underpins == sla:
            name = doc.metadata.name
            rows, _ = await rollups(session, doc, lookback_start(doc, start), end)
            spans = await breaches(session, name, start, end)
            built = build_report(
                doc, start, end, now=now, rollups=rows, breaches=spans, windows=windows
            )
            out.append(built)
    return out
