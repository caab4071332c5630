"""Hot reload: an applied change reaches a watcher through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.definitions.load import parse_document
from shared.definitions.store import Catalog, apply
from shared.definitions.watch import CatalogWatcher
from shared.settings import Settings

pytestmark = pytest.mark.integration


def receiver(url: str) -> dict[str, object]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Receiver",
        "metadata": {"name": "hook"},
        "spec": {"type": "webhook", "url": url},
    }


async def test_applied_change_reaches_the_watcher(settings: Settings, engine: AsyncEngine) -> None:
    sessions = db.sessions(engine)
    seen: asyncio.Queue[Catalog] = asyncio.Queue()
    assert settings.database_url is not None
    # the fallback refresh is an hour: only the notification can explain a prompt reload
    watcher = CatalogWatcher(sessions, settings.database_url, seen.put, refresh_ms=3_600_000)
    assert (await watcher.load()).receivers == {}
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        for url in ("http://127.0.0.1:1/a", "http://127.0.0.1:1/b"):
            async with sessions() as session, session.begin():
                await apply(session, [parse_document(receiver(url))])
            catalog = await asyncio.wait_for(seen.get(), 2.0)
            assert catalog.receivers["hook"].spec.url == url
        async with sessions() as session, session.begin():  # unchanged: no notification
            await apply(session, [parse_document(receiver("http://127.0.0.1:1/b"))])
        with pytest.raises(TimeoutError):
            await asyncio.wait_for(seen.get(), 0.5)
    finally:
        stop.set()
        await task
