"""``slawatch keys create|list|revoke``: API keys from the command line.

``create`` prints the key once (it is stored only as a hash); ``list`` shows names,
scopes, expiry, last use and revocation, never a key; ``revoke`` takes effect in
every running service within ``api_key_refresh_ms`` (1 s by default), usually at once
(LISTEN/NOTIFY). The actor recorded is ``cli:<user>``.
"""

from __future__ import annotations

import argparse
import asyncio
from datetime import UTC, datetime, timedelta

from shared import cliout, db
from shared.apikeys import store
from shared.apikeys.ratelimit import Rate, parse_rate
from shared.apikeys.scopes import Scope, parse_scopes
from shared.definitions.cli import Handler, default_author
from shared.models import ApiKeyRecord
from shared.settings import Settings
from shared.timeutil import parse_duration_ms


def add_command(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    keys = sub.add_parser("keys", help="create, list and revoke API keys")
    actions = keys.add_subparsers(dest="keys_command", required=True)
    create = actions.add_parser("create", help="create a key and print it (once)")
    create.add_argument("--name", required=True)
    create.add_argument(
        "--scope",
        action="append",
        required=True,
        help=f"repeatable: {', '.join(s.value for s in Scope)}",
    )
    create.add_argument("--expires", help="valid for this long, e.g. 30d (default: no expiry)")
    create.add_argument("--rate", help="sustained requests, e.g. 50/s (default: the setting)")
    create.add_argument("--burst", type=int, help="requests above the rate (with --rate)")
    listing = actions.add_parser("list", help="every key: name, scopes, expiry, last use")
    cliout.add_output_option(listing)
    revoke = actions.add_parser("revoke", help="revoke a key (every service within 2 s)")
    revoke.add_argument("name")


def actor() -> str:
    return f"cli:{default_author()}"


def _rate(args: argparse.Namespace, settings: Settings) -> Rate | None:
    if args.rate is None and args.burst is None:
        return None
    per_s = parse_rate(args.rate) if args.rate is not None else settings.api_key_rate_per_s
    burst = args.burst if args.burst is not None else max(1, round(per_s * 2))
    return Rate(per_s, burst)


async def create(settings: Settings, args: argparse.Namespace) -> str:
    scopes = parse_scopes(args.scope)
    rate = _rate(args, settings)
    now = datetime.now(UTC)
    expires = (
        now + timedelta(milliseconds=parse_duration_ms(args.expires)) if args.expires else None
    )
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session, session.begin():
            return await store.create_key(
                session,
                name=args.name,
                scopes=scopes,
                actor=actor(),
                now=now,
                expires_at=expires,
                rate=rate,
            )
    finally:
        await engine.dispose()


KEY_HEADER = ("NAME", "SCOPES", "EXPIRES", "LAST USED", "STATE")


async def _list(settings: Settings) -> list[ApiKeyRecord]:
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session:
            return await store.list_keys(session)
    finally:
        await engine.dispose()


def _when(at: datetime | None) -> str:
    return at.strftime("%Y-%m-%d %H:%M") if at else "-"


def _rfc3339(at: datetime | None) -> str | None:
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z") if at else None


def key_rows(rows: list[ApiKeyRecord]) -> list[tuple[str, ...]]:
    """The table of ``keys list`` (never the digest)."""
    out: list[tuple[str, ...]] = []
    for row in rows:
        state = (
            f"revoked {_when(row.revoked_at)} by {row.revoked_by}" if row.revoked_at else "active"
        )
        out.append(
            (row.name, ",".join(row.scopes), _when(row.expires_at), _when(row.last_used_at), state)
        )
    return out


def key_items(rows: list[ApiKeyRecord]) -> list[dict[str, object]]:
    """``keys list -o json|yaml``: every field but the digest, times in RFC 3339."""
    return [
        {
            "name": row.name,
            "scopes": list(row.scopes),
            "rate_per_s": row.rate_per_s,
            "burst": row.burst,
            "created_at": _rfc3339(row.created_at),
            "created_by": row.created_by,
            "expires_at": _rfc3339(row.expires_at),
            "last_used_at": _rfc3339(row.last_used_at),
            "revoked_at": _rfc3339(row.revoked_at),
            "revoked_by": row.revoked_by,
        }
        for row in rows
    ]


async def revoke(settings: Settings, name: str) -> None:
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session, session.begin():
            await store.revoke_key(session, name, actor=actor(), now=datetime.now(UTC))
    finally:
        await engine.dispose()


def main(settings: Settings, args: argparse.Namespace) -> int:
    """Exit code 0, or 1 for a refused request (bad scope, taken name, no such key)."""
    try:
        if args.keys_command == "create":
            key = asyncio.run(create(settings, args))
            print(f"key {args.name!r} created; it is shown only now:\n{key}")
        elif args.keys_command == "list":
            rows = asyncio.run(_list(settings))
            if args.output == "table":
                print(cliout.table(KEY_HEADER, key_rows(rows), empty="no keys"), end="")
            else:
                print(cliout.data(key_items(rows), args.output), end="")
        else:
            asyncio.run(revoke(settings, args.name))
            print(f"key {args.name!r} revoked")
    except (ValueError, store.KeyExists, store.NoSuchKey) as exc:
        print(f"slawatch keys: {exc}")
        return 1
    return 0


HANDLER: Handler = main
