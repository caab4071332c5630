"""API keys on the real PostgreSQL: the CLI, the stored digest, and a running key
cache (what every service holds) seeing a new key and a revocation within 2 s."""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import time

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.apikeys import cli, tokens
from shared.apikeys.cache import KeyCache
from shared.apikeys.scopes import Scope
from shared.http.auth import Authenticator
from shared.http.problems import HttpProblem
from shared.models import ApiKeyRecord
from shared.settings import Settings
from tests.keys import TEST_RATE

pytestmark = pytest.mark.integration

REVOCATION_BOUND_S = 2.0


def args(**values: object) -> argparse.Namespace:
    base = {"expires": None, "rate": None, "burst": None}
    return argparse.Namespace(**{**base, **values})


async def accepted(auth: Authenticator, key: str, scope: Scope) -> bool:
    try:
        auth.check(f"Bearer {key}", scope)
    except HttpProblem as refused:
        assert refused.problem.status in (401, 403)
        return False
    return True


async def within(seconds: float, probe, what: str) -> float:  # type: ignore[no-untyped-def]
    started = time.monotonic()
    while not await probe():
        assert time.monotonic() - started < seconds, f"not within {seconds} s: {what}"
        await asyncio.sleep(0.02)
    return time.monotonic() - started


async def test_created_key_works_and_revocation_takes_effect_within_2_s(
    settings: Settings, engine: AsyncEngine
) -> None:
    assert settings.database_url is not None
    cache = KeyCache(db.sessions(engine), settings.database_url, touch_every_ms=1_000)
    await cache.load()
    auth = Authenticator(cache, default_rate=TEST_RATE)
    stop = asyncio.Event()
    running = asyncio.create_task(cache.run(stop))
    try:
        key = await cli.create(
            settings, args(name="ci", scope=["config:read", "config:write"], expires="30d")
        )
        await within(REVOCATION_BOUND_S, lambda: accepted(auth, key, Scope.CONFIG_WRITE), "new key")
        assert not await accepted(auth, key, Scope.BREACHES_ACK)  # not its scope

        async with db.sessions(engine)() as session:
            row = (await session.execute(select(ApiKeyRecord))).scalar_one()
        assert row.digest == tokens.digest(key) and key not in str(row.__dict__)
        assert (row.scopes, row.created_by) == (["config:read", "config:write"], cli.actor())
        assert row.expires_at is not None

        listed = str(cli.key_rows(await cli._list(settings)))
        assert "ci" in listed and key not in listed

        await cli.revoke(settings, "ci")
        took = await within(
            REVOCATION_BOUND_S,
            lambda: _not(accepted(auth, key, Scope.CONFIG_READ)),
            "revocation",
        )
        assert took < REVOCATION_BOUND_S
    finally:
        stop.set()
        with contextlib.suppress(asyncio.CancelledError):
            await asyncio.wait_for(running, 10)
    async with db.sessions(engine)() as session:
        row = (await session.execute(select(ApiKeyRecord))).scalar_one()
    assert row.revoked_at is not None and row.revoked_by == cli.actor()
    assert row.last_used_at is not None  # written on stop, not per request


async def _not(probe) -> bool:  # type: ignore[no-untyped-def]
    return not await probe


async def test_cli_refuses_a_taken_name_and_an_unknown_scope(settings: Settings) -> None:
    await cli.create(settings, args(name="dup", scope=["admin"]))
    for refused in (
        args(keys_command="create", name="dup", scope=["admin"]),
        args(keys_command="create", name="x", scope=["root"]),
        args(keys_command="revoke", name="nobody"),
    ):
        # the command runs its own event loop, as from a shell
        assert await asyncio.to_thread(cli.main, settings, refused) == 1


async def test_list_prints_a_table_or_the_fields_without_the_digest(
    settings: Settings, capsys: pytest.CaptureFixture[str]
) -> None:
    await cli.create(settings, args(name="ci", scope=["events:write", "config:read"]))
    await cli.create(settings, args(name="old", scope=["admin"]))
    await asyncio.to_thread(cli.main, settings, args(keys_command="revoke", name="old"))
    capsys.readouterr()

    listing = args(keys_command="list", output="table")
    assert await asyncio.to_thread(cli.main, settings, listing) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["NAME", "SCOPES", "EXPIRES", "LAST", "USED", "STATE"]
    assert lines[2].split()[:2] == ["ci", "config:read,events:write"]
    assert lines[2].split()[-1] == "active"
    assert lines[3].split()[0] == "old" and "revoked" in lines[3]

    listing = args(keys_command="list", output="json")
    assert await asyncio.to_thread(cli.main, settings, listing) == 0
    items = json.loads(capsys.readouterr().out)
    assert [(k["name"], k["revoked_by"] is not None) for k in items] == [
        ("ci", False),
        ("old", True),
    ]
    assert items[0]["created_at"].endswith("Z") and "digest" not in items[0]
