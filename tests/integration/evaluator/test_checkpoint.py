"""Checkpoints in PostgreSQL: one transaction for many partitions, upserted, per group."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.evaluator.checkpoint import CheckpointStore, StoredCheckpoint
from shared import db

pytestmark = pytest.mark.integration


async def test_save_upserts_and_load_returns_the_latest(engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    store = CheckpointStore(sessions, "g-evaluator", "p.events")
    other_group = CheckpointStore(sessions, "h-evaluator", "p.events")
    assert await store.load([0, 1]) == {}

    await store.save({0: StoredCheckpoint(b"s0", 10), 1: StoredCheckpoint(b"s1", 20)})
    await store.save({1: StoredCheckpoint(b"s1'", 25)})
    await other_group.save({0: StoredCheckpoint(b"x", 99)})

    assert await store.load([0, 1, 2]) == {
        0: StoredCheckpoint(b"s0", 10),
        1: StoredCheckpoint(b"s1'", 25),
    }
    assert await other_group.load([0]) == {0: StoredCheckpoint(b"x", 99)}
    await store.save({})
