"""Notifier delivery latency: a breach event published on the breaches topic → the
webhook receiver has it (the whole path: broker, intake transaction, outbox claim,
HTTP POST). Embedded broker and PostgreSQL, the notifier in this process, a local
receiver; breaches are sent one at a time (each waits for its delivery), so the
figure is latency without queueing.

Figures: ``notifier.delivery_latency_p50_ms``, ``notifier.delivery_latency_p99_ms``,
and the first leg alone, published → intake transaction recording it began
(``notifier.intake_latency_p50_ms``: wall clock against ``recorded_at`` = ``now()``).

Isolation case: a second notifier (same infra, fresh topics) serves two receivers, one
that accepts connections and never answers and one healthy; a burst of
``ISOLATION_ALERTS`` breaches is routed to both. For each healthy delivery, the delay
from its outbox row's insert (``deliveries.created_at``) to the healthy receiver having
it: ``notifier.isolation_healthy_delay_max_ms`` / ``_p50_ms``, and how many of them
waited longer than 100 ms (``notifier.isolation_healthy_over_100ms``, a count). The
same burst with a healthy peer instead (``notifier.isolation_control_*``) gives the
delays a burst has anyway (intake, outbox claim, HTTP), so the difference is what the
hanging receiver costs the healthy one.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
import statistics
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import uvicorn
from sqlalchemy import text

from bench.results import Results
from services.notifier.main import run as run_service
from shared import db, kafka
from shared.definitions.load import parse_document
from shared.definitions.store import apply
from shared.embedded import embedded_infra
from shared.schemas import AgreementRef, Breach, WindowSli
from shared.settings import Settings
from shared.topics import Topics, ensure_topics

WARMUP = 20
SAMPLES = 300
ISOLATION_ALERTS = 20


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class Receiver:
    """An ASGI webhook receiver noting when each idempotency key first arrived."""

    def __init__(self) -> None:
        self.arrived: dict[str, float] = {}
        self.waiters: dict[str, asyncio.Event] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        now = time.perf_counter()
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        key = headers.get("idempotency-key", "")
        self.arrived.setdefault(key, now)
        if key in self.waiters:
            self.waiters[key].set()
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    def expect(self, key: str) -> asyncio.Event:
        return self.waiters.setdefault(key, asyncio.Event())


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Any:
        yield


def breach(i: int) -> Breach:
    now = time.time_ns() // 1_000_000
    return Breach(
        id=f"{uuid.uuid4().hex}",
        kind="breach.opened",
        at=now,
        agreement=AgreementRef(name="bench", type="SLA", provider="p", consumer="c"),
        objective="availability",
        objective_id="bench/availability",
        service="checkout",
        group={"customer": f"c{i % 10}"},
        rule="threshold",
        severity="page",
        windows=[WindowSli(window="1h", sli=0.98, target=0.999)],
        opened_at=now,
        detected_at=now,
    )


async def run(results: Results) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp)
        with embedded_infra(
            need_kafka=True, need_postgres=True, data_dir=data, kafka_port=0, postgres_port=0
        ) as infra:
            bootstrap, url = infra.kafka_bootstrap or "", infra.database_url or ""
            await _measure(bootstrap, url, data, results)
            await _isolation(bootstrap, url, data, results, peer_hangs=False)
            await _isolation(bootstrap, url, data, results, peer_hangs=True)


def _settings(bootstrap: str, database_url: str, data: Path) -> Settings:
    return Settings(
        kafka_bootstrap=bootstrap,
        database_url=database_url,
        topic_prefix=f"bench{uuid.uuid4().hex[:6]}",
        data_dir=data,
        notifier_port=_free_port(),
        kafka_session_timeout_ms=6_000,
        kafka_heartbeat_interval_ms=500,
    )


async def _measure(bootstrap: str, database_url: str, data: Path, results: Results) -> None:
    settings = _settings(bootstrap, database_url, data)
    await db.migrate(db.database_url(settings))
    await ensure_topics(settings)
    receiver = Receiver()
    port = _free_port()
    server = _Server(uvicorn.Config(receiver, host="127.0.0.1", port=port, log_config=None,
                                    access_log=False, lifespan="off"))  # fmt: skip
    serving = asyncio.create_task(server.serve())
    engine = db.engine(settings)
    async with db.sessions(engine)() as session:
        await apply(
            session,
            [
                parse_document(
                    {
                        "apiVersion": "slawatch/v1",
                        "kind": "Receiver",
                        "metadata": {"name": "hook"},
                        "spec": {"type": "webhook", "url": f"http://127.0.0.1:{port}/"},
                    }
                ),
                parse_document(
                    {
                        "apiVersion": "slawatch/v1",
                        "kind": "Agreement",
                        "metadata": {"name": "bench"},
                        "spec": {
                            "type": "SLA",
                            "objectives": [
                                {
                                    "name": "availability",
                                    "kind": "ratio",
                                    "service": "checkout",
                                    "good": {"outcome": "good"},
                                    "target": 0.999,
                                    "window": "1h",
                                }
                            ],
                            "notify": [{"receivers": ["hook"]}],
                        },
                    }
                ),
            ],
        )
        await session.commit()
    await engine.dispose()
    stop = asyncio.Event()
    notifier = asyncio.create_task(run_notifier(settings, stop))
    producer = kafka.producer(settings, linger_ms=0)
    await producer.start()
    topic = Topics.from_settings(settings).breaches
    latencies: list[float] = []
    published_ms: dict[str, float] = {}
    try:
        for i in range(WARMUP + SAMPLES):
            event = breach(i)
            arrived = receiver.expect(event.event_key)
            started = time.perf_counter()
            if i >= WARMUP:
                published_ms[event.id] = time.time_ns() / 1e6
            await producer.send_and_wait(topic, event.to_json(), key=event.objective_id.encode())
            async with asyncio.timeout(30):
                await arrived.wait()
            if i >= WARMUP:
                latencies.append((receiver.arrived[event.event_key] - started) * 1000)
    finally:
        await producer.stop()
        stop.set()
        await asyncio.wait_for(notifier, 15)
        server.should_exit = True
        await serving
    engine = db.engine(settings)
    async with engine.connect() as conn:
        rows = await conn.execute(
            text("SELECT breach_id, extract(epoch FROM recorded_at) * 1000 FROM breach_events")
        )
        intake = [float(ms) - published_ms[b] for b, ms in rows if b in published_ms]
    await engine.dispose()
    results.add("notifier.intake_latency_p50_ms", statistics.median(intake), "ms")
    cuts = statistics.quantiles(latencies, n=100, method="inclusive")
    results.add("notifier.delivery_latency_p50_ms", statistics.median(latencies), "ms")
    results.add("notifier.delivery_latency_p99_ms", cuts[98], "ms")


async def run_notifier(settings: Settings, stop: asyncio.Event) -> None:
    await run_service(settings, stop)


class Hanging:
    """A receiver that accepts connections, reads the request, and never answers."""

    def __init__(self) -> None:
        self.connections: list[asyncio.StreamWriter] = []

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections.append(writer)
        with contextlib.suppress(ConnectionError):
            while await reader.read(65536):
                pass  # hold the connection open, answer nothing


def _route_doc(receivers: dict[str, str]) -> list[dict[str, Any]]:
    return [
        *(
            {
                "apiVersion": "slawatch/v1",
                "kind": "Receiver",
                "metadata": {"name": name},
                "spec": {"type": "webhook", "url": url},
            }
            for name, url in receivers.items()
        ),
        {
            "apiVersion": "slawatch/v1",
            "kind": "Agreement",
            "metadata": {"name": "isolation"},
            "spec": {
                "type": "SLA",
                "objectives": [
                    {
                        "name": "availability",
                        "kind": "ratio",
                        "service": "checkout",
                        "good": {"outcome": "good"},
                        "target": 0.999,
                        "window": "1h",
                    }
                ],
                "notify": [{"receivers": sorted(receivers)}],
            },
        },
    ]


async def _serve(app: Any) -> tuple[_Server, asyncio.Task[None], int]:
    port = _free_port()
    server = _Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_config=None,
                                    access_log=False, lifespan="off"))  # fmt: skip
    return server, asyncio.create_task(server.serve()), port


async def _isolation(
    bootstrap: str, database_url: str, data: Path, results: Results, *, peer_hangs: bool
) -> None:
    """One burst to a healthy receiver and a peer: hanging, or (the control) healthy too."""
    settings = _settings(bootstrap, database_url, data)
    await ensure_topics(settings)
    hanging = Hanging()
    hang_server = await asyncio.start_server(hanging.handle, "127.0.0.1", 0)
    receiver, peer = Receiver(), Receiver()
    server, serving, port = await _serve(receiver)
    peer_server, peer_serving, peer_port = await _serve(peer)
    peer_url = (
        f"http://127.0.0.1:{hang_server.sockets[0].getsockname()[1]}/"
        if peer_hangs
        else f"http://127.0.0.1:{peer_port}/"
    )
    engine = db.engine(settings)
    async with db.sessions(engine)() as session:
        # "a-peer" sorts first: in each breach's rows the peer's comes first.
        docs = _route_doc({"a-peer": peer_url, "b-ok": f"http://127.0.0.1:{port}/"})
        await apply(session, [parse_document(d) for d in docs])
        await session.commit()
    stop = asyncio.Event()
    notifier = asyncio.create_task(run_notifier(settings, stop))
    producer = kafka.producer(settings, linger_ms=0)
    await producer.start()
    topic = Topics.from_settings(settings).breaches
    events = [breach(i).model_copy(update={"agreement": _isolation_ref()}) for i in range(
        ISOLATION_ALERTS)]  # fmt: skip
    keys = {e.id: e.event_key for e in events}
    waits = [receiver.expect(key) for key in keys.values()]
    try:
        # Delays count from each row's insert, so the consumer group's join is not in them.
        for event in events:
            await producer.send_and_wait(topic, event.to_json(), key=event.objective_id.encode())
        async with asyncio.timeout(120):
            for waiter in waits:
                await waiter.wait()
        wall_minus_perf = time.time() - time.perf_counter()
    finally:
        await producer.stop()
        stop.set()
        await asyncio.wait_for(notifier, 30)
        server.should_exit = peer_server.should_exit = True
        await serving
        await peer_serving
        for writer in hanging.connections:
            writer.close()
        hang_server.close()
    async with engine.connect() as conn:
        rows = await conn.execute(
            text(
                "SELECT breach_id, extract(epoch FROM created_at) * 1000 FROM deliveries"
                " WHERE receiver = 'b-ok' AND breach_id = ANY(:ids)"
            ),
            {"ids": list(keys)},
        )
        delays = [
            (receiver.arrived[keys[b]] + wall_minus_perf) * 1000 - float(ms) for b, ms in rows
        ]
    await engine.dispose()
    name = "notifier.isolation" if peer_hangs else "notifier.isolation_control"
    results.add(f"{name}_healthy_delay_max_ms", max(delays), "ms")
    results.add(f"{name}_healthy_delay_p50_ms", statistics.median(delays), "ms")
    results.add(f"{name}_healthy_over_100ms", float(sum(d > 100 for d in delays)), "count")


def _isolation_ref() -> AgreementRef:
    return AgreementRef(name="isolation", type="SLA", provider="p", consumer="c")
