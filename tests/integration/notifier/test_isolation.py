"""A receiver that hangs does not hold up deliveries to the others (real PostgreSQL,
real HTTP receivers on loopback, two workers as ``main`` runs them).

No timing assertion: the attempt timeout is set far beyond the test, so the ordering
itself is the proof. Every delivery to the healthy receiver must be recorded while
every attempt to the slow one is still open (none ended, none recorded), and the slow
one never holds more rows than the per-receiver bound of the workers' slots. Before
receivers were isolated, a worker delivered a claimed batch mixing both receivers and
claimed again only when the whole batch ended, so healthy rows waited for the slow
receiver's timeout.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.catalog import CatalogCache
from services.notifier.channels import build_channels
from services.notifier.intake import record_breach
from services.notifier.metrics import NotifierMetrics
from services.notifier.worker import DeliveryWorker, Doorbell, WorkerConfig
from shared import db
from shared.timeutil import wall_clock_ms
from tests.integration.notifier.support import (
    agreement_doc,
    apply_docs,
    eventually,
    receiver_doc,
    scalar,
)
from tests.unit.notifier.support import RecordingServer, make_breach

pytestmark = pytest.mark.integration

ALERTS = 20
WORKERS = 2
TIMEOUT_MS = 30_000  # an attempt to the slow receiver outlives the test
SLOW_ANSWER_S = 10.0


class Hanging:
    """Accepts connections, reads each request, never answers."""

    def __init__(self) -> None:
        self.received = 0
        self._writers: list[asyncio.StreamWriter] = []
        self._server: asyncio.Server | None = None

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.sockets[0].getsockname()[1]}/hook"

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.append(writer)
        with contextlib.suppress(ConnectionError, asyncio.IncompleteReadError):
            await reader.readuntil(b"\r\n\r\n")
            self.received += 1
            await reader.read()  # until the client gives up and closes

    async def __aenter__(self) -> Hanging:
        self._server = await asyncio.start_server(self._handle, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None
        for writer in self._writers:
            writer.close()
        self._server.close()
        await self._server.wait_closed()


class Slow(RecordingServer):
    """Answers, but only after ``SLOW_ANSWER_S``."""

    def __init__(self) -> None:
        super().__init__(delay_s=SLOW_ANSWER_S)

    @property
    def received(self) -> int:
        return len(self.requests)


@contextlib.asynccontextmanager
async def slow_peer(kind: str) -> AsyncIterator[Any]:
    if kind == "hangs":
        async with Hanging() as hanging:
            yield hanging
    else:
        async with Slow() as slow:
            yield slow


@pytest.mark.parametrize("kind", ["hangs", "answers after 10 s"])
async def test_a_hanging_receiver_does_not_hold_up_a_healthy_one(
    engine: AsyncEngine, make_settings: Any, kind: str
) -> None:
    settings = make_settings(delivery_timeout_ms=TIMEOUT_MS)
    config = WorkerConfig.from_settings(settings)
    sessions = db.sessions(engine)
    async with httpx.AsyncClient() as http, RecordingServer() as healthy:
        stop = asyncio.Event()
        doorbell = Doorbell()
        tasks: list[asyncio.Task[None]] = []
        try:
            async with slow_peer(kind) as slow:
                # "a-slow" sorts first: each breach's row for it precedes the healthy one's.
                await apply_docs(
                    engine,
                    receiver_doc("a-slow", slow.url),
                    receiver_doc("b-ok", healthy.url),
                    agreement_doc([{"receivers": ["a-slow", "b-ok"]}]),
                )
                async with sessions() as session, session.begin():
                    for i in range(ALERTS):
                        breach = make_breach(id=f"{i:032d}")
                        await record_breach(session, breach, ["a-slow", "b-ok"], wall_clock_ms())
                catalog = CatalogCache(sessions, wall_clock_ms)
                await catalog.reload()
                channels = build_channels(http, settings.delivery_timeout_ms)
                tasks = [
                    asyncio.create_task(
                        DeliveryWorker(
                            f"w{i}",
                            sessions,
                            catalog,
                            channels,
                            NotifierMetrics(CollectorRegistry()),
                            config,
                            wall_clock_ms,
                            lambda: 0.5,
                            doorbell,
                        ).run(stop)
                    )
                    for i in range(WORKERS)
                ]

                async def healthy_done_or_slow_ended() -> bool:
                    done = await count(engine, "b-ok", "status = 'delivered'")
                    return done == ALERTS or await attempts(engine, "a-slow") > 0

                await eventually(healthy_done_or_slow_ended, timeout_s=60)
                # Taken while the slow receiver still holds every request it got.
                healthy_done = await count(engine, "b-ok", "status = 'delivered'")
                slow_attempts = await attempts(engine, "a-slow")
                slow_in_flight = await count(engine, "a-slow", "status = 'delivering'")
                slow_untouched = await count(engine, "a-slow", "attempts = 0")
                slow_requests = slow.received
            # Leaving the block dropped the slow receiver's connections: its attempts end.
        finally:
            stop.set()
            doorbell.ring()
            await asyncio.wait_for(asyncio.gather(*tasks), 15)
    assert (healthy_done, slow_attempts) == (ALERTS, 0), "the slow receiver's attempts ended first"
    assert len({r.headers["idempotency-key"] for r in healthy.requests}) == ALERTS
    assert 1 <= slow_in_flight <= WORKERS * config.per_receiver
    assert slow_untouched == ALERTS - slow_in_flight
    assert slow_requests <= slow_in_flight


async def count(engine: AsyncEngine, receiver: str, where: str) -> int:
    sql = f"SELECT count(*) FROM deliveries WHERE receiver = :r AND {where}"
    return int(await scalar(engine, sql, r=receiver))


async def attempts(engine: AsyncEngine, receiver: str) -> int:
    sql = (
        "SELECT count(*) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id"
        " WHERE d.receiver = :r"
    )
    return int(await scalar(engine, sql, r=receiver))
