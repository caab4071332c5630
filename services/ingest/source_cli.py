"""``slawatch source test --source NAME --sample FILE [--defs PATH]``.

Shows what a Source's mapping makes of sample records, record by record and error
by error, without a broker. The Source comes from definition files (``--defs``, a
file or directory) or else from the database (``SLAWATCH_DATABASE_URL``). The
sample is NDJSON (one record value per line; blank lines skipped) or one JSON array
of records. Each record is mapped as if read from the Source's first topic,
partition 0, offset = its line (or array index), with no Kafka timestamp (so a
mapping without ``time`` uses the time of the test). Exit code 0 when every record
maps, 1 when one does not or the Source cannot be found, 2 on a usage problem.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any, TextIO

import orjson

from services.ingest.mapping import SourceRecord, compile_mapping, map_record
from services.ingest.normalize import DEFAULT_MAX_FUTURE_SKEW_MS
from shared.definitions.kinds.source import Source, SourceSpec
from shared.schemas import Event
from shared.settings import Settings
from shared.timeutil import Clock, wall_clock_ms


def add_command(sub: Any) -> None:
    """Register ``source test`` on the root subparsers."""
    source = sub.add_parser("source", help="work with Source definitions (Kafka topics)")
    actions = source.add_subparsers(dest="source_command", required=True)
    test = actions.add_parser("test", help="show what a Source's mapping makes of samples")
    test.add_argument("--source", required=True, help="the Source's metadata.name")
    test.add_argument("--sample", required=True, type=Path, help="NDJSON or JSON array file")
    test.add_argument("--defs", type=Path, help="definition file or directory (else the DB)")


def main(settings: Settings, args: argparse.Namespace, out: TextIO | None = None) -> int:
    out = out or sys.stdout
    spec = find_source(settings, args.source, args.defs, out)
    if spec is None:
        return 1
    try:
        samples = read_samples(args.sample)
    except (OSError, ValueError) as exc:
        print(f"cannot read {args.sample}: {exc}", file=out)
        return 2
    return report(args.source, spec, samples, out, max_future_skew_ms=settings.max_future_skew_ms)


def find_source(settings: Settings, name: str, defs: Path | None, out: TextIO) -> SourceSpec | None:
    if defs is not None:
        from shared.definitions.load import DefinitionsInvalid, load_paths

        try:
            documents = load_paths([defs])
        except DefinitionsInvalid as exc:
            for error in exc.errors:
                print(error, file=out)
            return None
        for doc in documents:
            if isinstance(doc, Source) and doc.metadata.name == name:
                return doc.spec
        print(f"no Source named {name!r} in {defs}", file=out)
        return None
    if not settings.database_url:
        print(
            "give --defs PATH, or set SLAWATCH_DATABASE_URL to read the Source from the database",
            file=out,
        )
        return None
    spec = asyncio.run(_from_database(settings, name))
    if spec is None:
        print(f"no Source named {name!r} in the database", file=out)
    return spec


async def _from_database(settings: Settings, name: str) -> SourceSpec | None:
    from services.ingest.source_catalog import load_sources
    from shared import db

    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session:
            return (await load_sources(session)).get(name)
    finally:
        await engine.dispose()


def read_samples(path: Path) -> list[tuple[int, bytes]]:
    """(line or index, record bytes) pairs."""
    data = path.read_bytes()
    if data.lstrip().startswith(b"["):
        try:
            array = orjson.loads(data)
        except orjson.JSONDecodeError:
            array = None
        if isinstance(array, list):
            return [(i, orjson.dumps(item)) for i, item in enumerate(array)]
    return [(i, line) for i, line in enumerate(data.split(b"\n")) if line.strip()]


def report(
    name: str,
    spec: SourceSpec,
    samples: list[tuple[int, bytes]],
    out: TextIO,
    clock: Clock = wall_clock_ms,
    *,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> int:
    mapping = compile_mapping(spec)
    now = clock()
    failed = 0
    for position, value in samples:
        record = SourceRecord(spec.topics[0], 0, position, None, value)
        outcome = map_record(mapping, record, now, max_future_skew_ms=max_future_skew_ms)
        if isinstance(outcome, Event):
            shown = outcome.model_dump(exclude_none=True, exclude={"received_at", "schema_version"})
            print(f"record {position}: event {orjson.dumps(shown).decode()}", file=out)
            continue
        failed += 1
        print(f"record {position}: rejected ({len(outcome)} error(s))", file=out)
        for error in outcome:
            print(f"  - {error.reason}: {error.describe()}", file=out)
    print(
        f"source {name}: {len(samples)} record(s), {len(samples) - failed} event(s), "
        f"{failed} rejected",
        file=out,
    )
    return 1 if failed else 0
