"""Async database engine and session factory; migrations applied through Alembic."""

from __future__ import annotations

import asyncio
import threading
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from shared.errors import ConfigError
from shared.settings import Settings

MIGRATIONS_DIR = Path(__file__).parent / "migrations"

# Alembic keeps its running context in module globals: one migration per process at a time.
# (Processes serialize on the PostgreSQL advisory lock in migrations/env.py.)
_MIGRATING = threading.Lock()


def async_url(url: str) -> str:
    """Any PostgreSQL URL spelling → the asyncpg dialect SQLAlchemy needs."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    raise ConfigError(f"not a PostgreSQL URL: {url.split('@')[-1]!r}")


def redacted_url(url: str) -> str:
    """``url`` fit for a log line or a terminal: the password replaced by ``***``."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return "<a database URL that does not parse>"


def database_url(settings: Settings) -> str:
    if not settings.database_url:
        raise ConfigError("SLAWATCH_DATABASE_URL is not set and no embedded PostgreSQL was started")
    return async_url(settings.database_url)


#: asyncpg waits 60 s for a connection by default; a frozen server should surface
#: sooner as a (transient, retried) timeout.
CONNECT_TIMEOUT_S = 10.0


def engine(settings: Settings, *, pool_size: int = 5) -> AsyncEngine:
    """A pool that survives a server restart: connections are pinged on checkout
    (a restarted server's dead ones are replaced), and connecting is bounded."""
    return create_async_engine(
        database_url(settings),
        pool_size=pool_size,
        max_overflow=5,
        pool_pre_ping=True,
        connect_args={"timeout": CONNECT_TIMEOUT_S},
    )


def sessions(db: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(db, expire_on_commit=False)


def alembic_config(url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS_DIR))
    config.set_main_option("sqlalchemy.url", async_url(url).replace("%", "%%"))
    return config


def migrate_sync(url: str, revision: str = "heads") -> None:
    """Upgrade the schema (blocking; it runs its own event loop).

    ``heads``: each component keeps its own migration branch on top of ``0001``."""
    with _MIGRATING:
        command.upgrade(alembic_config(url), revision)


async def migrate(url: str, revision: str = "heads") -> None:
    """Upgrade the schema from async code; concurrent callers serialize on an advisory lock."""
    await asyncio.to_thread(migrate_sync, url, revision)
