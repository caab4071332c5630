"""``slawatch breaches [--status open|resolved|all] [--agreement A] [--service S]
[--output table|json|yaml] [--watch]``: the breaches the notifier recorded.

Reads the database of the settings (like ``report``): an aligned table for people
(severity, since when, agreement, objective, group, the SLI against the target in the
objective's own unit, who acked), or JSON/YAML with the fields of the API's
``GET /v1/breaches``. ``--watch`` prints the table, then one line per breach that
opens, changes or resolves, as the notifier records it (the database is read every
``--interval`` seconds), until Ctrl-C.

The rendering (:func:`rows`, :func:`change_line`) and the watch loop (:func:`watch`,
clock and sleep injected) are pure of I/O; :func:`fetch` is the one query.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, TextIO

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.notifier import values
from services.notifier.outbox import dt_to_ms
from shared import cliout
from shared.models import BreachAck, BreachRecord
from shared.schemas import Breach
from shared.settings import Settings
from shared.timeutil import wall_clock_ms

#: most rows one listing prints (the API's page limit)
MAX_LIMIT = 500
SEVERITY_ORDER = {"page": 0, "critical": 0, "ticket": 1, "warning": 1, "info": 2}


def add_command(sub: Any) -> None:
    cmd = sub.add_parser("breaches", help="the breaches the notifier recorded (--watch: live)")
    cmd.add_argument("--status", choices=("open", "resolved", "all"), default="open")
    cmd.add_argument("--agreement", help="only this agreement's breaches")
    cmd.add_argument("--service", help="only this service's breaches")
    cmd.add_argument(
        "--limit", type=int, default=50, help=f"most breaches listed, 1 to {MAX_LIMIT}"
    )
    cliout.add_output_option(cmd)
    cmd.add_argument(
        "--watch", action="store_true", help="then print each change as it is recorded"
    )
    cmd.add_argument(
        "--interval", type=float, default=1.0, help="--watch: seconds between reads (0.2 to 60)"
    )


@dataclass(frozen=True)
class Listed:
    """One breach row with its acknowledgement, as the listing shows it."""

    record: BreachRecord
    ack: BreachAck | None
    updated_ms: int

    @property
    def key(self) -> tuple[str, int]:
        return self.record.status, self.updated_ms


@dataclass(frozen=True)
class Filters:
    status: str = "open"
    agreement: str | None = None
    service: str | None = None
    limit: int = 50


async def fetch(
    session: AsyncSession, filters: Filters, updated_after_ms: int | None = None
) -> list[Listed]:
    """Newest first; with ``updated_after_ms``, only rows changed after it (any status)."""
    stmt = select(BreachRecord, BreachAck).outerjoin(
        BreachAck, BreachAck.breach_id == BreachRecord.id
    )
    if updated_after_ms is None and filters.status != "all":
        stmt = stmt.where(BreachRecord.status == filters.status)
    if filters.agreement is not None:
        stmt = stmt.where(BreachRecord.agreement == filters.agreement)
    if filters.service is not None:
        stmt = stmt.where(BreachRecord.service == filters.service)
    if updated_after_ms is not None:
        after = datetime.fromtimestamp(updated_after_ms / 1000, UTC)
        stmt = stmt.where(BreachRecord.updated_at > after).order_by(BreachRecord.updated_at)
    else:
        stmt = stmt.order_by(BreachRecord.opened_at.desc(), BreachRecord.id.desc())
    stmt = stmt.limit(filters.limit)
    result = await session.execute(stmt)
    return [Listed(r, a, dt_to_ms(r.updated_at)) for r, a in result.all()]


# -- rendering (pure) ---------------------------------------------------------------


def ago(ms: int) -> str:
    """``3 m ago`` style: the largest unit or two, never negative."""
    seconds = max(0, ms // 1000)
    for unit, size in (("d", 86_400), ("h", 3_600), ("m", 60)):
        if seconds >= size:
            whole, rest = divmod(seconds, size)
            smaller = {"d": ("h", 3_600), "h": ("m", 60), "m": ("s", 1)}[unit]
            part = rest // smaller[1]
            return f"{whole} {unit} {part} {smaller[0]} ago" if part else f"{whole} {unit} ago"
    return f"{seconds} s ago"


def _stamp(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%Y-%m-%d %H:%M:%S UTC")


def sli_text(last_event: dict[str, Any]) -> str:
    """The first window's SLI against its target, in the objective's unit."""
    try:
        breach = Breach.model_validate(last_event)
    except ValidationError:
        return "?"
    texts = values.window_texts(breach, values.measure_of(breach))
    return texts[0].text if texts else ""


def _group(group: dict[str, Any]) -> str:
    return ", ".join(f"{k}={v}" for k, v in sorted(group.items())) or "-"


def ordered(listed: Sequence[Listed]) -> list[Listed]:
    """Open before resolved, then by severity (pages first), then oldest first."""
    return sorted(
        listed,
        key=lambda item: (
            item.record.status != "open",
            SEVERITY_ORDER.get(item.record.severity, 9),
            item.record.opened_at,
            item.record.id,
        ),
    )


HEADER = ("SEVERITY", "STATUS", "SINCE", "AGREEMENT", "OBJECTIVE", "GROUP", "SLI", "ACKED")


def rows(listed: Sequence[Listed], now_ms: int) -> list[tuple[str, ...]]:
    out: list[tuple[str, ...]] = []
    for item in ordered(listed):
        r = item.record
        since = ago(now_ms - r.opened_at)
        if r.status == "resolved" and r.resolved_at is not None:
            since = f"resolved {ago(now_ms - r.resolved_at)}"
        objective = r.objective_id.split("/", 1)[-1]
        acked = item.ack.acked_by if item.ack is not None else "-"
        out.append(
            (
                r.severity,
                r.status,
                f"{since} ({_stamp(r.opened_at)})",
                r.agreement,
                objective,
                _group(r.group),
                sli_text(r.last_event),
                acked,
            )
        )
    return out


def table(listed: Sequence[Listed], now_ms: int, *, color: bool | None = None) -> str:
    return cliout.table(
        HEADER,
        rows(listed, now_ms),
        empty="no breaches",
        alarming=lambda row: row[0] in ("page", "critical") and row[1] == "open",
        color=color,
    )


def public(item: Listed) -> dict[str, Any]:
    """The fields of the API's ``BreachPublic``, plus the acknowledgement."""
    r = item.record
    return {
        "id": r.id,
        "agreement": r.agreement,
        "objective_id": r.objective_id,
        "service": r.service,
        "group": r.group,
        "severity": r.severity,
        "status": r.status,
        "opened_at": r.opened_at,
        "resolved_at": r.resolved_at,
        "updated_at": item.updated_ms,
        "acked_by": item.ack.acked_by if item.ack is not None else None,
        "last_event": r.last_event,
    }


def serialized(listed: Sequence[Listed], output: str) -> str:
    return cliout.data([public(item) for item in ordered(listed)], output)


def change_line(item: Listed, before: tuple[str, int] | None) -> str:
    """One line for a breach that opened (``before`` None), changed or resolved."""
    r = item.record
    if before is None:
        what = "opened" if r.status == "open" else r.status
    elif r.status != before[0]:
        what = r.status
    else:
        what = "updated"
    when = datetime.fromtimestamp(item.updated_ms / 1000, UTC).strftime("%H:%M:%S")
    acked = f" acked by {item.ack.acked_by}" if item.ack is not None else ""
    return (
        f"{when} {what:<8} {r.severity:<8} {r.objective_id} {_group(r.group)} "
        f"{sli_text(r.last_event)}{acked}"
    )


# -- the loop -----------------------------------------------------------------------

Fetch = Callable[[int | None], Awaitable[list[Listed]]]


async def watch(
    fetch_since: Fetch,
    out: TextIO,
    *,
    sleep: Callable[[float], Awaitable[None]],
    interval_s: float,
    rounds: int | None = None,
) -> None:
    """Print one :func:`change_line` per change after the first read; ``rounds`` bounds
    the reads after it (tests), None runs until cancelled."""
    first = await fetch_since(None)
    seen = {item.record.id: item.key for item in first}
    since = max((item.updated_ms for item in first), default=0)
    done = 0
    while rounds is None or done < rounds:
        await sleep(interval_s)
        done += 1
        for item in await fetch_since(since):
            if seen.get(item.record.id) == item.key:
                continue  # a row seen at the same version (updated_at ties)
            out.write(change_line(item, seen.get(item.record.id)) + "\n")
            out.flush()
            seen[item.record.id] = item.key
            since = max(since, item.updated_ms - 1)  # ms ties: re-read, dedup by key


def check(args: argparse.Namespace) -> str | None:
    """The problem with the arguments, in one line, or None."""
    if not 1 <= args.limit <= MAX_LIMIT:
        return f"--limit is {args.limit}; it takes 1 to {MAX_LIMIT}"
    if not 0.2 <= args.interval <= 60:
        return f"--interval is {args.interval}; it takes 0.2 to 60 seconds"
    if args.watch and args.output != "table":
        return "--watch prints lines for people; leave out --output"
    return None


def main(settings: Settings, args: argparse.Namespace) -> int:
    from shared import db

    if problem := check(args):
        print(f"slawatch: {problem}", file=sys.stderr)
        return 2
    filters = Filters(args.status, args.agreement, args.service, args.limit)

    async def run() -> None:
        engine = db.engine(settings, pool_size=1)
        try:
            sessions = db.sessions(engine)

            async def fetch_since(after: int | None) -> list[Listed]:
                async with sessions() as session:
                    return await fetch(session, filters, after)

            listed = await fetch_since(None)
            if args.output == "table":
                sys.stdout.write(table(listed, wall_clock_ms()))
            else:
                sys.stdout.write(serialized(listed, args.output))
            sys.stdout.flush()
            if args.watch:
                await watch(fetch_since, sys.stdout, sleep=asyncio.sleep, interval_s=args.interval)
        finally:
            await engine.dispose()

    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C ends --watch
        asyncio.run(run())
    return 0
