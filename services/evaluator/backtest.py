"""``slawatch backtest``: the evaluator's engine, offline, over recorded events.

No broker, no database: definitions come from YAML files, events from an NDJSON file
or a JSON array of canonical events. Events are fed in file order to the very same
:class:`~services.evaluator.engine.Engine` the live evaluator runs, each into the
partition the live pipeline would put it in (ingest keys events by service, and the
partition is Kafka's default choice for that key among ``events_partitions``), so
services that share a partition live share its watermark here too.
After every event, event time is let pass to the watermark, as the live idle tick
does; at the end, to the last watermark, or with ``until`` to that instant, so
deadlines and freshness fire.

Breach events are the live ones field for field, except the wall-clock field
``detected_at`` (stamped by the given clock). Late events are counted, not published.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from aiokafka.partitioner import DefaultPartitioner
from pydantic import ValidationError

from services.evaluator.engine import Engine
from services.evaluator.objectives import compile_catalog
from services.evaluator.objectives.base import MAX_GROUPS
from services.evaluator.objectives.deadline import MAX_OPEN_ENTITIES
from shared.definitions.model import Agreement, Document, Receiver
from shared.definitions.store import Catalog
from shared.schemas import Breach, Event
from shared.settings import Settings
from shared.timeutil import Clock, to_rfc3339


class EventsInvalid(ValueError):
    """The events file holds something that is not a canonical event."""


def read_events(path: Path) -> list[Event]:
    """Canonical events from NDJSON or a JSON array; errors name the line or index."""
    data = path.read_bytes()
    stripped = data.lstrip()
    out: list[Event] = []
    try:
        if stripped.startswith(b"["):
            items: Iterable[tuple[str, Any]] = (
                (f"index {i}", item) for i, item in enumerate(orjson.loads(data))
            )
        else:
            items = (
                (f"line {n}", orjson.loads(line))
                for n, line in enumerate(data.splitlines(), 1)
                if line.strip()
            )
        for where, item in items:
            try:
                out.append(Event.model_validate(item))
            except ValidationError as exc:
                raise EventsInvalid(f"{path}: {where}: {exc.errors()[0]['msg']}") from None
    except orjson.JSONDecodeError as exc:
        raise EventsInvalid(f"{path}: not JSON: {exc}") from None
    return out


def catalog_of(documents: Iterable[Document]) -> Catalog:
    by_kind: dict[str, dict[str, Document]] = {}
    for doc in documents:
        by_kind.setdefault(doc.kind, {})[doc.metadata.name] = doc
    agreements = {n: d for n, d in by_kind.get("Agreement", {}).items() if isinstance(d, Agreement)}
    receivers = {n: d for n, d in by_kind.get("Receiver", {}).items() if isinstance(d, Receiver)}
    return Catalog(agreements, receivers, by_kind)


@dataclass
class Backtest:
    """The outcome of a run."""

    breaches: list[Breach] = field(default_factory=list)
    events: int = 0
    late: int = 0
    duplicates: int = 0
    end: int | None = None


#: Partitions of the events topic when the caller does not say (the settings' default).
EVENTS_PARTITIONS: int = Settings.model_fields["events_partitions"].default


def run(
    catalog: Catalog,
    events: Iterable[Event],
    *,
    clock: Clock,
    allowed_lateness_ms: int = 30_000,
    until: int | None = None,
    dedup_horizon_ms: int = 600_000,
    max_groups: int = MAX_GROUPS,
    max_open_entities: int = MAX_OPEN_ENTITIES,
    events_partitions: int = EVENTS_PARTITIONS,
) -> Backtest:
    """Feed ``events`` through a fresh engine (see the module docstring).

    The limits are the live evaluator's settings (``slawatch backtest`` passes them),
    so a backtest folds groups and refuses deadline starts where the evaluator would.
    """
    engine = Engine(
        compile_catalog(catalog, clock, max_groups=max_groups, max_open_entities=max_open_entities),
        allowed_lateness_ms=allowed_lateness_ms,
        dedup_horizon_ms=dedup_horizon_ms,
    )
    partitions: dict[str, int] = {}
    every = list(range(events_partitions))
    choose = DefaultPartitioner()
    result = Backtest()
    for event in events:
        partition = partitions.get(event.service)
        if partition is None:
            partition = partitions[event.service] = choose(event.service.encode(), every, every)
            if not engine.owns(partition):
                engine.assign(partition, None)
        result.events += 1
        processed = engine.process(partition, event)
        result.late += processed.late
        result.duplicates += processed.duplicate
        result.breaches.extend(processed.breaches)
        result.breaches.extend(engine.tick(partition))
    for partition in engine.partitions:
        if until is not None:
            result.breaches.extend(engine.advance_to(partition, until))
        else:
            result.breaches.extend(engine.tick(partition))
    marks = [w for p in engine.partitions if (w := engine.watermark(p)) is not None]
    result.end = until if until is not None else max(marks, default=None)
    return result


def summary(result: Backtest) -> Iterator[str]:
    """Lines of a table: per objective, breaches opened, first opened, time breached."""
    rows: dict[str, list[int]] = {}
    first: dict[str, int] = {}
    opened: dict[str, int] = {}
    for b in result.breaches:
        row = rows.setdefault(b.objective_id, [0, 0])
        if b.kind == "breach.opened":
            row[0] += 1
            first[b.objective_id] = min(first.get(b.objective_id, b.at), b.at)
            opened[b.id] = b.at
        elif b.kind == "breach.resolved" and b.id in opened:
            row[1] += b.at - opened.pop(b.id)
    end = result.end or 0
    for b in result.breaches:
        if b.id in opened and b.kind == "breach.opened":
            rows[b.objective_id][1] += max(0, end - opened.pop(b.id))
    header = f"{'objective':<40} {'breaches':>8}  {'first opened':<24} {'breached':>10}"
    yield header
    yield "-" * len(header)
    for oid in sorted(rows):
        count, breached = rows[oid]
        when = to_rfc3339(first[oid]) if oid in first else "-"
        spent = _hms(breached)
        yield f"{oid:<40} {count:>8}  {when:<24} {spent:>10}"
    yield (
        f"{result.events} events, {result.late} late, {result.duplicates} duplicates, "
        f"{len(result.breaches)} breach events"
    )


def add_command(sub: Any) -> None:
    """Register ``slawatch backtest`` on the CLI's subparsers."""
    cmd = sub.add_parser(
        "backtest", help="run the evaluator offline over recorded events (no broker, no db)"
    )
    cmd.add_argument("--defs", required=True, action="append", help="definition file or folder")
    cmd.add_argument("--events", required=True, help="NDJSON or JSON array of canonical events")
    cmd.add_argument("--out", help="write breach events here (JSON lines) instead of stdout")
    cmd.add_argument("--until", help="let event time pass to this instant (RFC 3339 or epoch ms)")
    cmd.add_argument("--allowed-lateness-ms", type=int, default=30_000)


def main(args: Any, settings: Settings | None = None) -> int:
    """``slawatch backtest``: breach events as JSON lines, then the summary on stderr.

    ``settings`` (the CLI's) give the dedup horizon and the group and open-entity caps.
    """
    import sys

    from shared.definitions.load import DefinitionsInvalid, load_paths
    from shared.progress import tracked
    from shared.timeutil import parse_time_ms, wall_clock_ms

    try:
        documents = load_paths([Path(p) for p in args.defs])
        events = read_events(Path(args.events))
        until = None if args.until is None else parse_time_ms(_maybe_int(args.until))
        catalog = catalog_of(documents)
        result = run(
            catalog,
            tracked(events, "backtest", total=len(events)),
            clock=wall_clock_ms,
            allowed_lateness_ms=args.allowed_lateness_ms,
            until=until,
            **({} if settings is None else limits(settings)),
        )
    except DefinitionsInvalid as exc:
        for error in exc.errors:
            print(error, file=sys.stderr)
        return 1
    except (EventsInvalid, ValueError, OSError) as exc:
        print(f"slawatch backtest: {exc}", file=sys.stderr)
        return 1
    lines = b"".join(b.to_json() + b"\n" for b in result.breaches)
    if args.out:
        Path(args.out).write_bytes(lines)
        report = sys.stdout
    else:
        sys.stdout.buffer.write(lines)
        sys.stdout.flush()
        report = sys.stderr
    for line in summary(result):
        print(line, file=report)
    return 0


def limits(settings: Settings) -> dict[str, int]:
    """The keyword arguments of :func:`run` that come from the evaluator's settings."""
    return {
        "dedup_horizon_ms": settings.dedup_horizon_ms,
        "max_groups": settings.evaluator_max_groups,
        "max_open_entities": settings.evaluator_max_open_entities,
        "events_partitions": settings.events_partitions,
    }


def _hms(ms: int) -> str:
    seconds = ms // 1000
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}"


def _maybe_int(text: str) -> str | int:
    return int(text) if text.strip().lstrip("-").isdigit() else text
