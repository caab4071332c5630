"""``slawatch report AGREEMENT [--period 2026-11] [--format json|csv|html]``.

Reads the database of the settings (``SLAWATCH_DATABASE_URL``) and prints the report
to stdout; the period is the current one unless ``--period`` names another (any text
``GET /v1/agreements/{name}/report?period=`` takes).
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from typing import Any

from services.notifier.reports import render
from services.notifier.reports.exceptions import ReportError
from shared.settings import Settings
from shared.timeutil import wall_clock_ms


def add_command(sub: Any) -> None:
    cmd = sub.add_parser("report", help="an agreement's period report (attainment, credits)")
    cmd.add_argument("agreement")
    cmd.add_argument("--period", help="2026-11, 2026-W48, 2026-Q4, a date or RFC 3339 time")
    cmd.add_argument("--format", choices=render.FORMATS, default="json")


async def _report(settings: Settings, name: str, period: str | None, fmt: str) -> str:
    from services.notifier.reports.record import rendered
    from shared import db

    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session:
            answer = await rendered(session, name, period=period, now=wall_clock_ms(), fmt=fmt)
            return answer.body
    finally:
        await engine.dispose()


def main(settings: Settings, args: argparse.Namespace) -> int:
    try:
        body = asyncio.run(_report(settings, args.agreement, args.period, args.format))
    except ReportError as exc:
        print(f"slawatch report: {exc}", file=sys.stderr)
        return 1
    sys.stdout.write(body)
    return 0
