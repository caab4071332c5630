"""Ingest throughput (``make bench``), loopback only.

Figures:

* ``ingest.http_batch1000.events_per_s``: ``POST /v1/events`` with JSON arrays of
  1,000 events over ``CONNECTIONS`` concurrent keep-alive connections, each answered
  202 only after the broker acknowledged every event (acks=all); events counted
  from the first request sent to the last answer received;
* ``ingest.source.events_per_s``: a Source over a topic pre-filled with
  ``SOURCE_RECORDS`` records in a foreign JSON shape (JSON paths, epoch-second time,
  an outcome condition, a unit conversion, two attributes), mapped, produced and
  committed; counted from the first to the last event the runner reports in
  ``slawatch_source_events_total`` (group join excluded).

Ingest runs as its own process (``python -m bench.bench_ingest serve``, the real
``services.ingest.main.run``) so the client does not share its event loop; the
embedded broker is a third process. Bounded: ``HTTP_BATCHES`` batches and a
``TIME_LIMIT_S`` per figure.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import orjson

from bench.results import Results
from shared import db, kafka
from shared.apikeys import store
from shared.apikeys.ratelimit import Rate
from shared.apikeys.scopes import Scope
from shared.embedded import embedded_infra, free_port
from shared.settings import Settings
from shared.topics import ensure_topics

CONNECTIONS = 4
BATCH = 1_000
HTTP_BATCHES = 150
SOURCE_RECORDS = 200_000
TIME_LIMIT_S = 60.0
SOURCE_ENV = "SLAWATCH_BENCH_SOURCE"
T0 = 1_795_870_800  # epoch seconds

SOURCE_SPEC: dict[str, Any] = {
    "topics": [],
    "mapping": {
        "id": "$.req",
        "service": "$.app",
        "time": {"path": "$.ts", "format": "epoch_s"},
        "outcome": "$.http.status < 500",
        "value": {"path": "$.took_us", "unit": "us"},
        "attributes": {"customer": "$.cust", "region": "$.geo.region"},
    },
}


def batch_body(run: str, n: int) -> bytes:
    return orjson.dumps(
        [
            {
                "id": f"{run}-{n}-{i}",
                "service": f"svc-{i % 50}",
                "type": "request",
                "time": (T0 + i) * 1000,
                "outcome": "bad" if i % 97 == 0 else "good",
                "value": float(i % 300),
                "attributes": {"customer": f"c{i % 7}"},
            }
            for i in range(BATCH)
        ]
    )


def source_record(i: int) -> bytes:
    return orjson.dumps(
        {
            "req": f"r{i}",
            "app": f"svc-{i % 50}",
            "ts": T0 + i // 100,
            "http": {"status": 503 if i % 101 == 0 else 200},
            "took_us": 1500 + i % 1000,
            "cust": f"c{i % 7}",
            "geo": {"region": "eu"},
        }
    )


def settings_env(settings: Settings) -> dict[str, str]:
    return {
        "SLAWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "SLAWATCH_DATABASE_URL": settings.database_url or "",
        "SLAWATCH_TOPIC_PREFIX": settings.topic_prefix,
        "SLAWATCH_INGEST_PORT": str(settings.ingest_port),
        "SLAWATCH_EVENTS_PARTITIONS": str(settings.events_partitions),
        "SLAWATCH_LOG_LEVEL": "WARNING",
    }


class IngestProcess:
    """``python -m bench.bench_ingest serve`` with the given settings."""

    def __init__(self, settings: Settings, source_topic: str | None, log: Path) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
        env.update(settings_env(settings))
        if source_topic is not None:
            env[SOURCE_ENV] = orjson.dumps(SOURCE_SPEC | {"topics": [source_topic]}).decode()
        self._log = log.open("wb")
        self.process = subprocess.Popen(
            [sys.executable, "-m", "bench.bench_ingest", "serve"],
            env=env,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            cwd=Path(__file__).resolve().parent.parent,
        )
        self.base = f"http://127.0.0.1:{settings.ingest_port}"

    async def ready(self, client: httpx.AsyncClient) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"ingest exited with {self.process.returncode}")
            try:
                if (await client.get(f"{self.base}/readyz")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.05)
        raise RuntimeError("ingest not ready in 30 s")

    def stop(self) -> None:
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(15)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self._log.close()


async def http_throughput(settings: Settings, log_dir: Path) -> float:
    bodies = [batch_body(uuid.uuid4().hex[:6], n) for n in range(HTTP_BATCHES)]
    ingest = IngestProcess(settings, None, log_dir / "ingest-http.log")
    limits = httpx.Limits(max_connections=CONNECTIONS, max_keepalive_connections=CONNECTIONS)
    try:
        async with httpx.AsyncClient(timeout=30.0, limits=limits) as client:
            await ingest.ready(client)
            headers = {"content-type": "application/json", **auth_header(settings)}
            await client.post(  # warm-up: connections, producer metadata
                f"{ingest.base}/v1/events", content=batch_body("warm", 0), headers=headers
            )
            queue: asyncio.Queue[bytes] = asyncio.Queue()
            for body in bodies:
                queue.put_nowait(body)
            accepted = 0
            started = time.perf_counter()
            deadline = started + TIME_LIMIT_S

            async def worker() -> None:
                nonlocal accepted
                while not queue.empty() and time.perf_counter() < deadline:
                    body = queue.get_nowait()
                    response = await client.post(
                        f"{ingest.base}/v1/events", content=body, headers=headers
                    )
                    if response.status_code != 202:
                        raise RuntimeError(f"{response.status_code}: {response.text[:300]}")
                    accepted += response.json()["accepted"]

            await asyncio.gather(*(worker() for _ in range(CONNECTIONS)))
            elapsed = time.perf_counter() - started
    finally:
        ingest.stop()
    return accepted / elapsed


async def fill_topic(settings: Settings, topic: str, count: int) -> None:
    from aiokafka.admin import NewTopic

    admin = kafka.admin_client(settings)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=4, replication_factor=1)])
    finally:
        await admin.close()
    producer = kafka.producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        pending = []
        for i in range(count):
            pending.append(await producer.send(topic, source_record(i), key=str(i).encode()))
            if len(pending) >= 10_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def source_throughput(settings: Settings, log_dir: Path) -> float:
    topic = f"{settings.topic_prefix}.foreign"
    await fill_topic(settings, topic, SOURCE_RECORDS)
    ingest = IngestProcess(settings, topic, log_dir / "ingest-source.log")
    try:
        async with httpx.AsyncClient(timeout=10.0) as client:
            await ingest.ready(client)
            first: tuple[float, float] | None = None
            deadline = time.monotonic() + TIME_LIMIT_S
            while True:
                count = await source_events(client, ingest.base)
                now = time.perf_counter()
                if count > 0 and first is None:
                    first = (now, count)
                if count >= SOURCE_RECORDS or time.monotonic() > deadline:
                    break
                await asyncio.sleep(0.05)
    finally:
        ingest.stop()
    assert first is not None, "the source produced nothing"
    return (count - first[1]) / (now - first[0])


async def source_events(client: httpx.AsyncClient, base: str) -> float:
    text = (await client.get(f"{base}/metrics")).text
    for line in text.splitlines():
        if line.startswith('slawatch_source_events_total{source="bench"}'):
            return float(line.rsplit(" ", 1)[1])
    return 0.0


_KEYS: dict[str, str] = {}


async def bench_key(settings: Settings) -> str:
    """An events key for the run, with a bucket the benchmark cannot empty."""
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session, session.begin():
            return await store.create_key(
                session,
                name=f"bench-{settings.topic_prefix}",
                scopes=[Scope.EVENTS_WRITE, Scope.METRICS_READ],
                actor="bench",
                now=datetime.now(UTC),
                rate=Rate(per_s=10_000_000, burst=10_000_000),
            )
    finally:
        await engine.dispose()


def auth_header(settings: Settings) -> dict[str, str]:
    return {"Authorization": f"Bearer {_KEYS[settings.topic_prefix]}"}


async def run(results: Results) -> None:
    with tempfile.TemporaryDirectory(prefix="bench-ingest-") as tmp:
        data = Path(tmp)
        with embedded_infra(
            need_kafka=True, need_postgres=True, data_dir=data, kafka_port=0, postgres_port=0
        ) as infra:
            assert infra.database_url is not None
            await db.migrate(infra.database_url)
            for figure, measure in (
                ("ingest.http_batch1000.events_per_s", http_throughput),
                ("ingest.source.events_per_s", source_throughput),
            ):
                settings = Settings(
                    kafka_bootstrap=infra.kafka_bootstrap,
                    database_url=infra.database_url,
                    topic_prefix=f"b{uuid.uuid4().hex[:8]}",
                    ingest_port=free_port(),
                    events_partitions=4,
                )
                await ensure_topics(settings)
                _KEYS[settings.topic_prefix] = await bench_key(settings)
                results.add(figure, await measure(settings, data), "events/s")


def serve() -> int:
    """The ingest process of this benchmark (settings from the environment)."""
    from services.ingest.main import run as run_ingest
    from shared import logs
    from shared.definitions.kinds.source import SourceSpec
    from shared.runtime import run_main

    settings = Settings()
    logs.configure("ingest", settings.log_level)
    raw = os.environ.get(SOURCE_ENV)
    sources = {"bench": SourceSpec.model_validate_json(raw)} if raw else {}
    return run_main(lambda stop: run_ingest(settings, stop, sources=sources))


if __name__ == "__main__" and sys.argv[1:] == ["serve"]:
    raise SystemExit(serve())
