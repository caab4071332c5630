"""Shared helpers of the ingest integration tests: start ingest in-process, read topics."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from prometheus_client import CollectorRegistry

from services.ingest.main import run
from shared import kafka
from shared.definitions.kinds.source import SourceSpec
from shared.settings import Settings
from shared.topics import Topics
from tests.keys import bearer, stored_key

NOW = 1_800_000_000_000
WAIT_S = 15.0


@dataclass
class Ingest:
    settings: Settings
    topics: Topics
    client: httpx.AsyncClient
    registry: CollectorRegistry
    task: asyncio.Task[None]

    def metric(self, name: str, **labels: str) -> float:
        return self.registry.get_sample_value(name, labels) or 0.0


@contextlib.asynccontextmanager
async def running_ingest(
    settings: Settings,
    *,
    http_options: Mapping[str, Any] | None = None,
    sources: Mapping[str, SourceSpec] | None = None,
) -> AsyncIterator[Ingest]:
    stop = asyncio.Event()
    registry = CollectorRegistry()
    # before the start, so the first requests find it; without a database ingest can
    # check no key (and refuses every request)
    key = await stored_key(settings) if settings.database_url else None
    task = asyncio.create_task(
        run(
            settings,
            stop,
            registry=registry,
            clock=lambda: NOW,
            http_options=http_options,
            sources=sources,
        )
    )
    base = f"http://{settings.host}:{settings.ingest_port}"
    headers = bearer(key) if key else {}
    async with httpx.AsyncClient(base_url=base, timeout=20.0, headers=headers) as client:
        await wait_ready(client, task)
        try:
            yield Ingest(settings, Topics.from_settings(settings), client, registry, task)
        finally:
            stop.set()
            await asyncio.wait_for(task, settings.shutdown_grace_s + 5)


async def wait_ready(client: httpx.AsyncClient, task: asyncio.Task[None]) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while asyncio.get_running_loop().time() < deadline:
        if task.done():
            task.result()
            raise AssertionError("ingest stopped before it was ready")
        try:
            if (await client.get("/readyz")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.05)
    raise AssertionError(f"ingest not ready within {WAIT_S} s")


async def read_topic(
    settings: Settings,
    topic: str,
    count: int,
    *,
    wait_s: float = WAIT_S,
    extra_s: float = 0.3,
) -> list[tuple[bytes | None, bytes]]:
    """``count`` (key, value) pairs from ``topic`` from the beginning (no group), plus
    whatever else arrives within ``extra_s`` after."""
    consumer = kafka.consumer(settings, topic, group_id=None)
    await consumer.start()
    got: list[tuple[bytes | None, bytes]] = []
    deadline = asyncio.get_running_loop().time() + wait_s
    try:
        while len(got) < count:
            assert asyncio.get_running_loop().time() < deadline, f"only {len(got)} of {count}"
            batch = await consumer.getmany(timeout_ms=300)
            got.extend((r.key, r.value) for records in batch.values() for r in records)
        until = asyncio.get_running_loop().time() + extra_s
        while (left := until - asyncio.get_running_loop().time()) > 0:
            extra = await consumer.getmany(timeout_ms=max(1, int(left * 1000)))
            got.extend((r.key, r.value) for records in extra.values() for r in records)
    finally:
        await consumer.stop()
    return got
