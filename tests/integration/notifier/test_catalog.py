"""The catalog sees definitions applied while the notifier runs."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.catalog import CatalogCache
from shared import db
from shared.timeutil import wall_clock_ms
from tests.integration.notifier.support import agreement_doc, apply_docs, eventually, receiver_doc

pytestmark = pytest.mark.integration


async def test_periodic_reload(engine: AsyncEngine) -> None:
    catalog = CatalogCache(db.sessions(engine), wall_clock_ms)
    await catalog.reload()
    assert catalog.current.receivers == {}
    stop = asyncio.Event()
    task = asyncio.create_task(catalog.run(stop, interval_ms=20))
    try:
        await apply_docs(engine, receiver_doc("hook", "http://127.0.0.1:9/"), agreement_doc([]))

        async def seen() -> bool:
            return "hook" in catalog.current.receivers

        await eventually(seen, timeout_s=5)
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert set(catalog.current.agreements) == {"acme-checkout"}


async def test_a_miss_reloads_at_most_once_per_interval(engine: AsyncEngine) -> None:
    now = [0]
    catalog = CatalogCache(db.sessions(engine), lambda: now[0], min_refresh_ms=1_000)
    await catalog.reload()
    await apply_docs(engine, receiver_doc("hook", "http://127.0.0.1:9/"))
    assert await catalog.receiver("hook") is None  # reloaded just now: not again yet
    now[0] = 1_000
    found = await catalog.receiver("hook")
    assert found is not None and found.metadata.name == "hook"
