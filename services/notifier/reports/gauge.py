"""``slawatch_agreement_credit_percent{agreement, basis}``: every agreement's live
liability (``.liability``) for the period in progress, ``basis="now"`` (today's
attainment) and ``basis="projected"`` (the current burn to period end), refreshed every
:data:`INTERVAL_MS` from the same reports the API serves."""

from __future__ import annotations

import asyncio
import contextlib
import logging

from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.metrics import NotifierMetrics
from services.notifier.reports.exceptions import ReportError
from services.notifier.reports.store import report_for
from shared.models import Definition
from shared.timeutil import Clock

log = logging.getLogger(__name__)

INTERVAL_MS = 60_000


async def refresh_once(
    session: AsyncSession, metrics: NotifierMetrics, now: int, shown: set[str]
) -> set[str]:
    """Set the gauge for every stored agreement; returns the agreements shown (the
    caller passes them back, so an agreement deleted since loses its series)."""
    names = (
        await session.execute(select(Definition.name).where(Definition.kind == "Agreement"))
    ).scalars()
    now_shown: set[str] = set()
    for name in names:
        try:
            report = await report_for(session, name, period=None, now=now)
        except (ReportError, ValueError) as exc:  # a stored agreement that no longer fits
            log.warning("no liability for %s: %s", name, exc)
            continue
        liability = report.liability
        current = liability.credit_percent if liability else report.credit.percent
        projected = liability.projected_credit_percent if liability else report.credit.percent
        metrics.agreement_credit.labels(name, "now").set(current)
        metrics.agreement_credit.labels(name, "projected").set(projected)
        now_shown.add(name)
    for gone in shown - now_shown:
        for basis in ("now", "projected"):
            with contextlib.suppress(KeyError):
                metrics.agreement_credit.remove(gone, basis)
    return now_shown


async def refresh_liability_gauge(
    sessions: async_sessionmaker[AsyncSession],
    metrics: NotifierMetrics,
    clock: Clock,
    stop: asyncio.Event,
    interval_ms: int = INTERVAL_MS,
) -> None:
    """Keep the gauge current until ``stop``; a database outage skips a round."""
    shown: set[str] = set()
    while not stop.is_set():
        try:
            async with sessions() as session:
                shown = await refresh_once(session, metrics, clock(), shown)
        except (SQLAlchemyError, OSError) as exc:
            log.warning("cannot compute the live liability: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), interval_ms / 1000)
