"""Readiness tells the truth, and every service reconnects instead of dying.

The three services run on a PostgreSQL and a broker of this module's own (the
suite's shared ones must not be disturbed), which the tests stop, start and freeze
(SIGSTOP on the whole PostgreSQL process group, as a frozen host). During each
outage every ``/readyz`` answers within 1 s with 503 and the reason; afterwards 200,
every service still runs, and work resumes (ingest accepts, the notifier delivers a
breach published after the outage, topics are back with their partition counts).
"""

from __future__ import annotations

import asyncio
import os
import signal
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.evaluator.main import run as run_evaluator
from services.ingest.main import run as run_ingest
from services.notifier.main import run as run_notifier
from shared import db, kafka
from shared.embedded import (
    ChildProcess,
    free_port,
    postgres_password,
    postgres_url,
    start_broker,
    start_postgres,
)
from shared.settings import Settings
from shared.topics import Topics, topic_partitions
from tests.integration.notifier.support import agreement_doc, apply_docs, receiver_doc
from tests.keys import bearer, stored_key
from tests.unit.notifier.support import RecordingServer, make_breach

pytestmark = pytest.mark.integration

WAIT_S = 40.0
READY_ANSWER_S = 1.0
FREEZE_S = 6.0
SERVICES = ("ingest", "evaluator", "notifier")


@dataclass
class Infra:
    """This module's own PostgreSQL and broker, restartable on the same ports."""

    root: Path
    pg_port: int = field(default_factory=free_port)
    kafka_port: int = field(default_factory=free_port)
    postgres: ChildProcess | None = None
    broker: ChildProcess | None = None

    def start_postgres(self) -> None:
        self.postgres = start_postgres(
            self.root / "pgdata", self.pg_port, self.root / "logs" / "postgres.log"
        )

    def start_broker(self) -> None:
        self.broker = start_broker(self.kafka_port, self.root / "logs" / "broker.log")

    def signal_postgres(self, sig: signal.Signals) -> None:
        assert self.postgres is not None
        os.killpg(self.postgres.process.pid, sig)  # postmaster and every backend

    def stop(self) -> None:
        for child in (self.broker, self.postgres):
            if child is not None:
                if child.running():
                    os.killpg(child.process.pid, signal.SIGCONT)
                child.stop()


@pytest.fixture(scope="module")
def own_infra(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Infra]:
    infra = Infra(tmp_path_factory.mktemp("outages"))
    try:
        infra.start_postgres()
        infra.start_broker()
        yield infra
    finally:
        infra.stop()


@dataclass
class Stack:
    """The three services, a receiver and a client per service."""

    settings: Settings
    infra: Infra
    receiver: RecordingServer
    tasks: dict[str, asyncio.Task[None]]
    clients: dict[str, httpx.AsyncClient]
    engine: AsyncEngine

    def running(self) -> dict[str, bool]:
        return {name: not task.done() for name, task in self.tasks.items()}

    async def readiness(self) -> dict[str, tuple[int, dict[str, Any]]]:
        """Every service's ``/readyz``; each must answer within :data:`READY_ANSWER_S`."""
        answers = await asyncio.gather(*(self.clients[n].get("/readyz") for n in SERVICES))
        return {n: (a.status_code, a.json()) for n, a in zip(SERVICES, answers, strict=True)}

    async def until_readiness(
        self, accept: Callable[[str, int, dict[str, Any]], bool], what: str
    ) -> dict[str, tuple[int, dict[str, Any]]]:
        """Poll every ``/readyz`` until ``accept`` holds for each service."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + WAIT_S
        seen: dict[str, tuple[int, dict[str, Any]]] = {}
        while loop.time() < deadline:
            assert all(self.running().values()), f"a service exited: {self.running()}"
            seen = await self.readiness()
            if all(accept(n, *seen[n]) for n in SERVICES):
                return seen
            await asyncio.sleep(0.1)
        raise AssertionError(f"not {what} within {WAIT_S} s: {seen}")

    async def all_ready(self) -> None:
        await self.until_readiness(lambda _n, status, _b: status == 200, "ready")

    async def post_event(self) -> httpx.Response:
        event = {"id": uuid.uuid4().hex, "service": "checkout", "type": "request"}
        # Not bounded like /readyz: a request waits for the broker's acknowledgements.
        return await self.clients["ingest"].post("/v1/events", json=event, timeout=WAIT_S)

    async def deliver_new_breach(self) -> None:
        """A breach published now reaches the receiver."""
        breach = make_breach(id=uuid.uuid4().hex)
        before = len(self.receiver.requests)
        producer = await until_started(lambda: started_producer(self.settings))
        try:
            await producer.send_and_wait(
                Topics.from_settings(self.settings).breaches, breach.to_json(), key=b"acme"
            )
        finally:
            await producer.stop()
        await self.receiver.wait_for(before + 1, timeout_s=WAIT_S)
        keys = [r.headers["idempotency-key"] for r in self.receiver.requests]
        assert breach.event_key in keys


async def started_producer(settings: Settings) -> Any:
    producer = kafka.producer(settings)
    await producer.start()
    return producer


async def until_started(start: Callable[[], Awaitable[Any]]) -> Any:
    """The test's own client may meet the broker restarting: retry, bounded."""
    async with asyncio.timeout(WAIT_S):
        while True:
            try:
                return await start()
            except Exception:  # retried until the deadline
                await asyncio.sleep(0.2)


@pytest.fixture(scope="module")
async def stack(own_infra: Infra, tmp_path_factory: pytest.TempPathFactory) -> AsyncIterator[Stack]:
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{own_infra.kafka_port}",
        database_url=postgres_url(own_infra.pg_port, postgres_password(own_infra.root / "pgdata")),
        topic_prefix=f"o{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path_factory.mktemp("stack"),
        ingest_port=free_port(),
        evaluator_port=free_port(),
        notifier_port=free_port(),
        events_partitions=2,
        raw_events_partitions=2,
        breaches_partitions=2,
        kafka_session_timeout_ms=3_000,
        kafka_heartbeat_interval_ms=300,
        delivery_poll_interval_ms=100,
        delivery_backoff_base_ms=50,
        delivery_backoff_max_ms=500,
        shutdown_grace_s=3.0,
    )
    # before the services start, so their first key load has it
    key = await stored_key(settings, migrate=True)
    stop = asyncio.Event()
    tasks = {
        "ingest": asyncio.create_task(
            run_ingest(settings, stop, http_options={"publish_timeout_s": 3.0})
        ),
        "evaluator": asyncio.create_task(run_evaluator(settings, stop)),
        "notifier": asyncio.create_task(run_notifier(settings, stop)),
    }
    ports = {
        "ingest": settings.ingest_port,
        "evaluator": settings.evaluator_port,
        "notifier": settings.notifier_port,
    }
    clients = {
        n: httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{p}", timeout=READY_ANSWER_S, headers=bearer(key)
        )
        for n, p in ports.items()
    }
    engine = db.engine(settings, pool_size=1)
    try:
        async with RecordingServer() as receiver:
            built = Stack(settings, own_infra, receiver, tasks, clients, engine)
            await until_serving(built)
            await apply_docs(
                engine,
                receiver_doc("oncall", receiver.url),
                agreement_doc([{"match": {"severity": "page"}, "receivers": ["oncall"]}]),
            )
            await built.all_ready()
            yield built
    finally:
        stop.set()
        await asyncio.wait(tasks.values(), timeout=settings.shutdown_grace_s + 10)
        for client in clients.values():
            await client.aclose()
        await engine.dispose()
    for name, task in tasks.items():
        assert task.done(), f"{name} did not stop"
        task.result()


async def until_serving(stack: Stack) -> None:
    async with asyncio.timeout(WAIT_S):
        for name in SERVICES:
            while True:
                assert not stack.tasks[name].done(), stack.tasks[name].result()
                try:
                    await stack.clients[name].get("/healthz")
                    break
                except httpx.TransportError:
                    await asyncio.sleep(0.1)


def reason(body: dict[str, Any], check: str) -> str:
    return str(body["checks"].get(check, {}).get("reason", ""))


async def test_postgres_stop_and_start(stack: Stack) -> None:
    await stack.all_ready()
    stack.infra.postgres.stop()  # type: ignore[union-attr]

    down = await stack.until_readiness(
        lambda _n, status, body: status == 503 and not body["checks"]["database"]["ok"],
        "503 for the database",
    )
    assert all(down[n][1]["checks"]["broker"] == {"ok": True} for n in SERVICES)
    config = await stack.clients["ingest"].get("/v1/agreements")
    assert config.status_code == 503, config.text
    assert config.headers["content-type"] == "application/problem+json"
    assert "retry-after" in config.headers

    stack.infra.start_postgres()
    await stack.all_ready()
    assert all(stack.running().values())
    assert (await stack.post_event()).status_code == 202
    assert (await stack.clients["ingest"].get("/v1/agreements")).status_code == 200
    await stack.deliver_new_breach()


async def test_postgres_freeze(stack: Stack) -> None:
    await stack.all_ready()
    stack.infra.signal_postgres(signal.SIGSTOP)
    try:
        frozen = await stack.until_readiness(
            lambda _n, status, body: status == 503 and "timeout" in reason(body, "database"),
            "503 with a database timeout",
        )
        assert all("0.8 s" in reason(frozen[n][1], "database") for n in SERVICES)
        await asyncio.sleep(FREEZE_S)  # the outage itself: services must sit it out
        assert all(stack.running().values())
        still = await stack.readiness()
        assert all(still[n][0] == 503 for n in SERVICES), still
    finally:
        stack.infra.signal_postgres(signal.SIGCONT)
    await stack.all_ready()
    assert all(stack.running().values())
    await stack.deliver_new_breach()


async def test_broker_restart_recreates_topics(stack: Stack) -> None:
    await stack.all_ready()
    stack.infra.broker.stop()  # type: ignore[union-attr]
    await stack.until_readiness(
        lambda _n, status, body: status == 503 and not body["checks"]["broker"]["ok"],
        "503 for the broker",
    )
    refused = await stack.post_event()
    assert refused.status_code == 503
    assert refused.headers["content-type"] == "application/problem+json"
    assert "retry-after" in refused.headers

    stack.infra.start_broker()  # memory only: it comes back without topics
    await stack.all_ready()
    admin = kafka.admin_client(stack.settings)
    await until_started(admin.start)
    try:
        described = await admin.describe_topics()
    finally:
        await admin.close()
    counts = {t["topic"]: len(t["partitions"]) for t in described}
    assert {n: counts.get(n) for n in topic_partitions(stack.settings)} == topic_partitions(
        stack.settings
    )

    async def accepted() -> bool:
        return (await stack.post_event()).status_code == 202

    async with asyncio.timeout(WAIT_S):
        while not await accepted():
            await asyncio.sleep(0.3)
    assert all(stack.running().values())
    await stack.deliver_new_breach()


async def test_ingest_started_before_its_broker_waits_for_it(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    port = free_port()
    settings = Settings(
        kafka_bootstrap=f"127.0.0.1:{port}",
        topic_prefix=f"w{uuid.uuid4().hex[:8]}",
        data_dir=tmp_path_factory.mktemp("late"),
        ingest_port=free_port(),
        events_partitions=2,
        raw_events_partitions=2,
        shutdown_grace_s=3.0,
    )
    stop = asyncio.Event()
    task = asyncio.create_task(run_ingest(settings, stop))
    broker: ChildProcess | None = None
    try:
        await asyncio.sleep(1.5)  # several connection attempts against nothing
        assert not task.done()
        broker = start_broker(port)
        async with httpx.AsyncClient(
            base_url=f"http://127.0.0.1:{settings.ingest_port}", timeout=READY_ANSWER_S
        ) as client:
            async with asyncio.timeout(WAIT_S):
                while True:
                    assert not task.done(), task.result()
                    try:
                        if (await client.get("/readyz")).status_code == 200:
                            break
                    except httpx.TransportError:
                        pass
                    await asyncio.sleep(0.1)
    finally:
        stop.set()
        await asyncio.wait_for(task, settings.shutdown_grace_s + 10)
        if broker is not None:
            broker.stop()
