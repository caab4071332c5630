"""The definition subcommands of ``slawatch``: validate, apply, schema, history and
import. ``services/cli.py`` registers them; each returns the process exit code
(0 fine, 1 invalid definitions or refused change)."""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TextIO

import yaml

from shared import cliout
from shared.definitions.load import DefinitionError, DefinitionsInvalid, load_located
from shared.definitions.schema import all_schema, kind_schema
from shared.settings import Settings

Handler = Callable[[Settings, argparse.Namespace], int]


def print_errors(errors: list[DefinitionError], out: TextIO | None = None) -> None:
    out = out if out is not None else sys.stderr  # looked up now: tests replace it
    for error in errors:
        print(error, file=out)
    print(f"{len(errors)} error(s)", file=out)


def default_author() -> str:
    try:
        return os.environ.get("USER") or getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


def add_apply_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--prune", action="store_true", help="delete stored definitions not in these files"
    )
    parser.add_argument("--reason", help="why (kept in the version history)")
    parser.add_argument("--author", help="who (default: $USER)")


def apply_command(settings: Settings, args: argparse.Namespace) -> int:
    """``slawatch apply -f PATH… [--dry-run] [--prune] [--reason R] [--author A]``."""
    from shared import db
    from shared.definitions.store import apply

    try:
        located = load_located([Path(p) for p in args.file])
    except DefinitionsInvalid as exc:
        print_errors(exc.errors)
        return 1
    author = getattr(args, "author", None) or default_author()

    async def store() -> int:
        assert settings.database_url is not None
        await db.migrate(settings.database_url)
        engine = db.engine(settings, pool_size=1)
        try:
            async with db.sessions(engine)() as session:
                try:
                    results = await apply(
                        session,
                        located,
                        author=author,
                        reason=getattr(args, "reason", None),
                        prune=getattr(args, "prune", False),
                    )
                except DefinitionsInvalid as exc:
                    await session.rollback()
                    print_errors(exc.errors)
                    return 1
                if args.dry_run:
                    await session.rollback()
                else:
                    await session.commit()
        finally:
            await engine.dispose()
        counts: dict[str, int] = {}
        for r in results:
            counts[r.change] = counts.get(r.change, 0) + 1
            detail = f" ({', '.join(r.fields)})" if r.fields else ""
            print(f"{r.kind}/{r.name} {r.change} (version {r.version}){detail}")
        summary = ", ".join(
            f"{counts.get(c, 0)} {c}" for c in ("created", "changed", "unchanged", "deleted")
        )
        print(summary + (" — dry run: nothing stored" if args.dry_run else ""))
        return 0

    return asyncio.run(store())


def schema_command(_settings: Settings, args: argparse.Namespace) -> int:
    """``slawatch schema [KIND]``: JSON Schema of one kind, or of any document."""
    from shared.definitions.model import KINDS

    kind = getattr(args, "kind", None)
    if kind is None:
        schema = all_schema()
    elif kind in KINDS:
        schema = kind_schema(kind)
    else:
        print(f"unknown kind {kind!r} (known: {', '.join(sorted(KINDS))})", file=sys.stderr)
        return 1
    print(json.dumps(schema, indent=2))
    return 0


def history_command(settings: Settings, args: argparse.Namespace) -> int:
    """``slawatch history KIND/NAME [--version N | --diff [FROM:TO]]``: the versions, one
    version's YAML, or a unified diff between two versions."""
    from shared import db
    from shared.definitions.store import history

    kind, _, name = args.ref.partition("/")
    if not name:
        print("write KIND/NAME, e.g. Agreement/acme-checkout", file=sys.stderr)
        return 1

    async def show() -> int:
        engine = db.engine(settings, pool_size=1)
        try:
            async with db.sessions(engine)() as session:
                versions = await history(session, kind, name)
        finally:
            await engine.dispose()
        if not versions:
            print(f"no history for {kind}/{name}", file=sys.stderr)
            return 1
        if args.diff is not None:
            from shared.definitions import history_diff

            documents = {v.version: v.document for v in versions}
            older, newer = history_diff.pick(sorted(documents), args.diff)
            text = history_diff.unified(args.ref, documents, older, newer)
            print(text or f"# versions {older} and {newer} are the same", end="" if text else "\n")
            return 0
        if args.version is not None:
            chosen = [v for v in versions if v.version == args.version]
            if not chosen:
                print(f"{kind}/{name} has no version {args.version}", file=sys.stderr)
                return 1
            if chosen[0].document is None:
                print(f"# version {args.version}: deleted")
            else:
                print(yaml.safe_dump(chosen[0].document, sort_keys=False), end="")
            return 0
        if args.output != "table":
            items = [
                {
                    "version": v.version,
                    "created_at": v.created_at.isoformat().replace("+00:00", "Z"),
                    "change": v.change,
                    "author": v.author,
                    "reason": v.reason,
                }
                for v in versions
            ]
            print(cliout.data(items, args.output), end="")
            return 0
        for v in versions:
            reason = f"  {v.reason}" if v.reason else ""
            when = f"{v.created_at:%Y-%m-%d %H:%M:%S}"
            print(f"{v.version:>4}  {when}  {v.change:<8} {v.author}{reason}")
        return 0

    return asyncio.run(show())


def import_command(_settings: Settings, args: argparse.Namespace) -> int:
    """``slawatch import openslo PATH… [-o FILE]``: slawatch YAML out, report on stderr."""
    from shared.definitions.openslo import import_paths

    result = import_paths(
        [Path(p) for p in args.paths],
        event_type=args.event_type,
        agreement_type=args.agreement_type,
    )
    text = result.yaml()
    if args.output:
        Path(args.output).write_text(text)
    else:
        print(text, end="")
    kinds: dict[str, int] = {}
    for document in result.documents:
        kinds[document["kind"]] = kinds.get(document["kind"], 0) + 1
    made = ", ".join(f"{n} {k}" for k, n in sorted(kinds.items())) or "nothing"
    print(f"converted: {made}", file=sys.stderr)
    if result.notes:
        print(f"{len(result.notes)} field(s) not carried over or changed:", file=sys.stderr)
        for note in result.notes:
            print(f"  {note}", file=sys.stderr)
    if result.errors:
        print_errors(result.errors)
        return 1
    return 0


def add_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Register ``schema``, ``history`` and ``import`` (handlers: :data:`HANDLERS`)."""
    schema = sub.add_parser("schema", help="print the JSON Schema of definitions")
    schema.add_argument("kind", nargs="?", help="one kind (default: any document)")
    hist = sub.add_parser("history", help="versions of a stored definition")
    hist.add_argument("ref", metavar="KIND/NAME")
    cliout.add_output_option(hist)
    shown = hist.add_mutually_exclusive_group()
    shown.add_argument("--version", type=int, help="print this version's document")
    shown.add_argument(
        "--diff",
        nargs="?",
        const="",
        metavar="FROM:TO",
        help="unified diff of two versions (N: against the one before; default: the last two)",
    )
    imp = sub.add_parser("import", help="convert definitions from another format")
    imp.add_argument("format", choices=["openslo"])
    imp.add_argument("paths", nargs="+", metavar="PATH")
    imp.add_argument("-o", "--output", help="write the slawatch YAML here (default: stdout)")
    imp.add_argument(
        "--event-type", default="request", help="event type objectives select (default: request)"
    )
    imp.add_argument(
        "--agreement-type", default="SLA", choices=["SLA", "OLA", "UC"], help="default: SLA"
    )


HANDLERS: dict[str, Handler] = {
    "schema": schema_command,
    "history": history_command,
    "import": import_command,
}
