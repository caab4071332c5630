"""Hot reload: a change made through the REST API reaches a running watcher through
LISTEN/NOTIFY within 2 s (the fallback refresh is an hour, so only the notification
can explain it), and a deletion too."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.config import config_router
from shared import db
from shared.definitions.store import Catalog
from shared.definitions.watch import CatalogWatcher
from shared.settings import Settings
from tests.keys import api_client, guarded_app

pytestmark = pytest.mark.integration


def party(name: str, role: str) -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Party",
        "metadata": {"name": name},
        "spec": {"role": role},
    }


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = guarded_app(config_router(db.sessions(engine)))
    async with api_client(app, "http://config") as http:
        yield http


async def test_rest_changes_reach_a_running_watcher(
    settings: Settings, engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    seen: asyncio.Queue[Catalog] = asyncio.Queue()
    assert settings.database_url is not None
    watcher = CatalogWatcher(
        db.sessions(engine), settings.database_url, seen.put, refresh_ms=3_600_000
    )
    await watcher.load()
    stop = asyncio.Event()
    task = asyncio.create_task(watcher.run(stop))
    try:
        created = await client.post("/v1/parties", json=party("acme", "customer"))
        assert created.status_code == 201
        catalog = await asyncio.wait_for(seen.get(), 2.0)
        assert catalog.of("Party")["acme"].spec.role == "customer"  # type: ignore[union-attr]

        replaced = await client.put(
            "/v1/parties/acme", json=party("acme", "supplier"), headers={"if-match": '"1"'}
        )
        assert replaced.status_code == 200
        catalog = await asyncio.wait_for(seen.get(), 2.0)
        assert catalog.of("Party")["acme"].spec.role == "supplier"  # type: ignore[union-attr]

        assert (await client.delete("/v1/parties/acme")).status_code == 204
        catalog = await asyncio.wait_for(seen.get(), 2.0)
        assert "acme" not in catalog.of("Party")
    finally:
        stop.set()
        await task
