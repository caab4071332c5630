"""Reports of record: a closed period's report is built once and kept.

The first time anyone asks for a period closed :data:`GRACE_MS` ago or more (the API,
the CLI, or the notifier's own :func:`close_periods` loop, which freezes every
agreement's last period within a minute of that), the report is built and stored in
every format
(``period_reports``); from then on it is served from there, so editing the agreement,
or rollups written late, never change a closed period's report: re-reading gives the
same bytes. A period in progress is built live each time. Two replicas freezing the
same period at once keep the first row written (insert … on conflict do nothing, then
read it back). The grace lets the last events of the period (late within the
evaluator's allowed lateness, then checkpointed) reach the rollups first; a period
that ended before the agreement was first stored is never frozen by the loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.reports import periods, render
from services.notifier.reports.exceptions import ReportError
from services.notifier.reports.store import agreement_named, report_for
from shared.models import Definition, DefinitionVersion, PeriodReport
from shared.timeutil import Clock, to_rfc3339

log = logging.getLogger(__name__)

MEDIA_TYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "html": "text/html; charset=utf-8",
}
CLOSE_INTERVAL_MS = 60_000
#: how long after a period's end its report becomes the report of record
GRACE_MS = 120_000


@dataclass(frozen=True)
class Rendered:
    body: str
    media_type: str
    #: the download name of a CSV (``<agreement>-<period>.csv``), None otherwise
    filename: str | None
    #: whether this is a closed period's stored report
    of_record: bool


async def freeze(session: AsyncSession, name: str, start: int, now: int) -> PeriodReport:
    """The stored report of ``name``'s period starting at ``start`` (closed by ``now``),
    built and stored first if it is not yet."""
    stored = await session.get(PeriodReport, (name, start))
    if stored is not None:
        return stored
    report = await report_for(session, name, period=to_rfc3339(start), now=now)
    await session.execute(
        insert(PeriodReport)
        .values(
            agreement=name,
            period_start=report.start,
            period_end=report.end,
            label=report.label,
            built_at=now,
            json=render.to_json(report),
            csv=render.to_csv(report),
            html=render.to_html(report),
        )
        .on_conflict_do_nothing(index_elements=[PeriodReport.agreement, PeriodReport.period_start])
    )
    await session.commit()
    kept = await session.get(PeriodReport, (name, start), populate_existing=True)
    assert kept is not None  # just written, by this call or a concurrent one
    return kept


async def rendered(
    session: AsyncSession, name: str, *, period: str | None, now: int, fmt: str
) -> Rendered:
    """``name``'s report for the period ``period`` names (None: the current one) in
    ``fmt``: from the record for a closed period, built live otherwise."""
    agreement = await agreement_named(session, name)
    every, timezone = agreement.spec.period.every, agreement.spec.period.timezone
    at = now if period is None else periods.instant_in(period, timezone)
    start, end = periods.bounds(at, every, timezone)
    if end + GRACE_MS <= now:
        stored = await freeze(session, name, start, now)
        body = {"json": stored.json, "csv": stored.csv, "html": stored.html}[fmt]
        label, of_record = stored.label, True
    else:
        report = await report_for(session, name, period=period, now=now)
        body, label, of_record = render.render(report, fmt), report.label, False
    filename = f"{name}-{label}.csv" if fmt == "csv" else None
    return Rendered(body, MEDIA_TYPES[fmt], filename, of_record)


async def close_once(session: AsyncSession, now: int) -> list[str]:
    """Freeze every agreement's last closed period not yet stored; returns the
    ``agreement/label`` of those frozen now."""
    names = list(
        (
            await session.execute(select(Definition.name).where(Definition.kind == "Agreement"))
        ).scalars()
    )
    frozen = []
    for name in names:
        try:
            agreement = await agreement_named(session, name)
        except (ReportError, ValueError):
            continue  # no longer a valid agreement: nothing to report
        every, timezone = agreement.spec.period.every, agreement.spec.period.timezone
        current, _ = periods.bounds(now - GRACE_MS, every, timezone)
        start, end = periods.previous(current, every, timezone)
        first = await session.scalar(
            select(func.min(DefinitionVersion.created_at)).where(
                DefinitionVersion.kind == "Agreement", DefinitionVersion.name == name
            )
        )
        if first is not None and end <= first.timestamp() * 1000:
            continue  # the period was over before the agreement existed here
        if await session.get(PeriodReport, (name, start)) is None:
            stored = await freeze(session, name, start, now)
            frozen.append(f"{name}/{stored.label}")
    return frozen


async def close_periods(
    sessions: async_sessionmaker[AsyncSession],
    clock: Clock,
    stop: asyncio.Event,
    interval_ms: int = CLOSE_INTERVAL_MS,
) -> None:
    """Until ``stop``: every ``interval_ms``, freeze the periods that closed."""
    while not stop.is_set():
        try:
            async with sessions() as session:
                for what in await close_once(session, clock()):
                    log.info("report of record stored: %s", what)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cannot store the closed periods' reports: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_ms / 1000)
