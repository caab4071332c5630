"""API keys for tests: known keys in a fixed key set (apps built in-process), keys
stored in the test database (services run against it), and clients that send them.

    app = create_app(..., auth=static_auth())
    async with api_client(app, "http://ingest") as http: ...      # admin key sent

    key = await stored_key(settings)                               # a real row
    httpx.AsyncClient(base_url=..., headers=bearer(key))
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Any

import httpx
from fastapi import APIRouter, FastAPI

from shared import db
from shared.apikeys import store, tokens
from shared.apikeys.cache import StaticKeys
from shared.apikeys.ratelimit import Rate
from shared.apikeys.scopes import Scope
from shared.apikeys.store import KeyEntry
from shared.http.auth import Authenticator
from shared.http.problems import install_handlers
from shared.settings import Settings
from shared.timeutil import Clock, wall_clock_ms

#: The admin key of :func:`static_auth` (the shape ``tokens.new_key`` makes).
ADMIN_KEY = "sw_" + "A" * 43
ADMIN_NAME = "test-admin"
#: A generous bucket: tests are not about the rate limit unless they say so.
TEST_RATE = Rate(per_s=1_000_000, burst=1_000_000)


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def entry(
    key: str,
    name: str,
    scopes: Iterable[Scope],
    *,
    expires_at_ms: int | None = None,
    rate: Rate | None = None,
) -> KeyEntry:
    return KeyEntry(name, tokens.digest(key), frozenset(scopes), rate, expires_at_ms)


def static_auth(
    *extra: KeyEntry, clock: Clock = wall_clock_ms, monotonic: Clock | None = None
) -> Authenticator:
    """An authenticator knowing :data:`ADMIN_KEY` (and ``extra``)."""
    keys = StaticKeys([entry(ADMIN_KEY, ADMIN_NAME, [Scope.ADMIN]), *extra])
    if monotonic is None:
        return Authenticator(keys, default_rate=TEST_RATE, clock=clock)
    return Authenticator(keys, default_rate=TEST_RATE, clock=clock, monotonic=monotonic)


def api_client(app: Any, base_url: str, key: str = ADMIN_KEY, **options: Any) -> httpx.AsyncClient:
    """An in-process client of ``app`` that sends ``key``."""
    return httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app),
        base_url=base_url,
        headers=bearer(key),
        **options,
    )


async def stored_key(
    settings: Settings,
    name: str | None = None,
    scopes: Iterable[Scope] = (Scope.ADMIN,),
    *,
    migrate: bool = False,
    **options: Any,
) -> str:
    """Create a key in the settings' database (migrated first with ``migrate``); the
    key. The name defaults to a fresh ``test-…`` one."""
    assert settings.database_url is not None
    if migrate:
        await db.migrate(settings.database_url)
    name = name or f"test-{uuid.uuid4().hex[:8]}"
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session, session.begin():
            return await store.create_key(
                session,
                name=name,
                scopes=scopes,
                actor="tests",
                now=datetime.now(UTC),
                rate=options.pop("rate", TEST_RATE),
                **options,
            )
    finally:
        await engine.dispose()


def stored_key_sync(settings: Settings, **options: Any) -> str:
    return asyncio.run(stored_key(settings, **options))


_MEMO: dict[tuple[str, str, str], str] = {}


async def key_for(settings: Settings) -> str:
    """One admin key per test (its settings: database, topic prefix, data directory),
    created on first use. Tables are emptied per test, so it is never reused."""
    memo = (settings.database_url or "", settings.topic_prefix, str(settings.data_dir))
    if memo not in _MEMO:
        _MEMO[memo] = await stored_key(settings)
    return _MEMO[memo]


def guarded_app(*routers: APIRouter) -> FastAPI:
    """An app of ``routers`` with the service skeleton's authenticator (the
    :data:`ADMIN_KEY`) and problem handlers."""
    app = FastAPI()
    app.state.authenticator = static_auth()
    install_handlers(app)
    for router in routers:
        app.include_router(router)
    return app
