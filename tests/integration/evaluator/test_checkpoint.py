"""Checkpoints in PostgreSQL: one transaction for many partitions, upserted, per group."""

from __future__ import annotations

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.evaluator.checkpoint import CheckpointStore, StoredCheckpoint
from services.evaluator.engine import DedupDelta
from services.evaluator.state import Slice
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


async def test_dedup_slices_are_added_once_expired_and_loaded_per_partition(
    engine: AsyncEngine,
) -> None:
    store = CheckpointStore(db.sessions(engine), "d-evaluator", "p.events")
    first = DedupDelta([Slice(100, ["a", "b"]), Slice(200, ["c"])], None)
    await store.save({0: StoredCheckpoint(b"s", 1)}, dedup={0: first})
    second = DedupDelta([Slice(300, ["d"])], 150)  # the slice bound 100 has expired
    await store.save(
        {0: StoredCheckpoint(b"s", 2), 1: StoredCheckpoint(b"t", 5)},
        dedup={0: second, 1: DedupDelta([Slice(50, ["z"])], None)},
    )
    loaded = await store.load([0, 1])
    assert loaded[0].dedup == [(200, ["c"]), (300, ["d"])]
    assert loaded[1].dedup == [(50, ["z"])]


async def test_dedup_slices_of_a_checkpoint_that_did_not_stand_are_ignored(
    engine: AsyncEngine,
) -> None:
    """An owner fenced out by a rebalance may still finish a checkpoint; when the new
    owner's checkpoint (at an earlier offset) replaces it, the stale slice must not
    mark the events the new owner replays as duplicates."""
    zombie = CheckpointStore(db.sessions(engine), "z-evaluator", "p.events")
    owner = CheckpointStore(db.sessions(engine), "z-evaluator", "p.events")
    await zombie.save(
        {0: StoredCheckpoint(b"a", 8)}, dedup={0: DedupDelta([Slice(70, ["e6", "e7"])], None)}
    )
    await owner.save(
        {0: StoredCheckpoint(b"b", 6)}, dedup={0: DedupDelta([Slice(50, ["e5"])], None)}
    )
    assert (await owner.load([0]))[0].dedup == [(50, ["e5"])]
    # Once the owner's own checkpoint passes that offset, the slice is harmless again.
    await owner.save({0: StoredCheckpoint(b"c", 9)}, dedup={0: DedupDelta([], None)})
    assert (await owner.load([0]))[0].dedup == [(50, ["e5"]), (70, ["e6", "e7"])]
