"""The ack-link key is not in PostgreSQL: a key an earlier version stored there moves
to the key file (links already sent keep working) and leaves the database."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.ackkey import LEGACY_ROW, ack_link_key
from shared import db
from shared.models import NotifierSecret

pytestmark = pytest.mark.integration


async def rows(engine: AsyncEngine) -> list[str]:
    async with db.sessions(engine)() as session:
        return list((await session.scalars(select(NotifierSecret.name))).all())


async def test_new_key_goes_to_a_0600_file_only(engine: AsyncEngine, tmp_path: Path) -> None:
    path = tmp_path / "ack-link.key"
    key = await ack_link_key(db.sessions(engine), path)
    assert path.read_bytes().strip() == key
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert await rows(engine) == []
    assert await ack_link_key(db.sessions(engine), path) == key


async def test_a_stored_plain_key_is_moved_out(engine: AsyncEngine, tmp_path: Path) -> None:
    legacy = "L" * 43
    async with db.sessions(engine)() as session, session.begin():
        session.add(NotifierSecret(name=LEGACY_ROW, value=legacy))
    path = tmp_path / "ack-link.key"
    assert await ack_link_key(db.sessions(engine), path) == legacy.encode()
    assert await rows(engine) == []
    assert path.read_text().strip() == legacy
