"""Evaluator throughput, memory per group and restore time (``make bench``).

Figures:

* ``evaluator.ceiling.events_per_s``: a bare aiokafka consumer reading the events
  topic and decoding every record with orjson (nothing else);
* ``evaluator.ratio.events_per_s``: one evaluator process (``services.evaluator.main``
  with the real broker and PostgreSQL: consume, evaluate, produce breaches, checkpoint,
  commit) over 1,000 services x 1 ratio objective;
* ``evaluator.ratio_quantile.events_per_s``: the same with a ratio and a quantile
  objective per service (2,000 objectives);
* ``evaluator.ratio_quantile.fraction_of_ceiling``: the last over the ceiling;
* ``evaluator.bytes_per_group``: memory of one (objective, group) of a ratio objective
  with the default burn-rate windows and a 30d window;
* ``evaluator.restore_100k_groups_s``: decoding a partition snapshot holding 100,000
  groups of such an objective.

The evaluator runs with the default checkpoint settings (every 100,000 events or 5 s,
incremental dedup slices). Throughput is measured from the first to the last event
counted by the evaluator's
``slawatch_events_evaluated_total`` (group join and start-up excluded). Event time
advances as in a live stream of 60,000 events/s (the 300,000 events span 5 s), so
the idle tick steps each group through about as many bucket boundaries as it would
live; every id stays within the 10-minute dedup horizon.
"""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import orjson
from aiokafka import TopicPartition
from sqlalchemy import text

from bench.results import Results
from services.evaluator.engine import Engine
from services.evaluator.main import run as run_evaluator
from services.evaluator.objectives import compile_catalog
from services.evaluator.objectives.burnrate import BurnRateShard, group_nbytes
from shared import db, kafka
from shared.definitions.load import parse_document
from shared.definitions.model import Agreement
from shared.definitions.store import Catalog, apply
from shared.embedded import embedded_infra
from shared.metrics import new_registry
from shared.schemas import Event
from shared.settings import Settings
from shared.topics import Topics, ensure_topics

SERVICES = 1_000
EVENTS = 300_000
T0 = 1_700_000_000_000
REPEATS = int(os.environ.get("BENCH_REPEATS", "2"))
#: Event time advances as in a live stream of 60,000 events/s.
EVENTS_PER_MS = 60


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def agreements(quantile: bool) -> list[Agreement]:
    out = []
    for s in range(SERVICES):
        objectives: list[dict[str, Any]] = [
            {
                "name": "availability",
                "kind": "ratio",
                "service": f"svc{s}",
                "select": {"type": "request"},
                "good": {"outcome": "good"},
                "target": 0.99,
                "window": "5m",
                "alerting": {"minEvents": 20},
            }
        ]
        if quantile:
            objectives.append(
                {
                    "name": "latency-p99",
                    "kind": "quantile",
                    "service": f"svc{s}",
                    "select": {"type": "request"},
                    "quantile": 0.99,
                    "threshold": 800,
                    "window": "5m",
                    "alerting": {"minEvents": 20},
                }
            )
        doc = parse_document(
            {
                "apiVersion": "slawatch/v1",
                "kind": "Agreement",
                "metadata": {"name": f"svc{s}-sla"},
                "spec": {"type": "SLA", "objectives": objectives},
            }
        )
        assert isinstance(doc, Agreement)
        out.append(doc)
    return out


def events() -> list[tuple[bytes, bytes]]:
    out = []
    for i in range(EVENTS):
        service = f"svc{i % SERVICES}"
        # A bad phase for a tenth of the services opens and resolves breaches.
        bad = (i % 50 == 0) or (i % SERVICES < 100 and 100_000 <= i < 130_000 and i % 3 == 0)
        body = {
            "id": f"e{i}",
            "service": service,
            "type": "request",
            "time": T0 + i // EVENTS_PER_MS,
            "outcome": "bad" if bad else "good",
            "value": float(50 + (i * 7919) % 700 + (900 if bad else 0)),
            "attributes": {"customer": "acme", "region": "eu"},
            "received_at": T0 + i // EVENTS_PER_MS + 3,
        }
        out.append((service.encode(), orjson.dumps(body)))
    return out


async def produce(settings: Settings, records: list[tuple[bytes, bytes]]) -> None:
    producer = kafka.producer(settings, linger_ms=20, max_batch_size=256 * 1024)
    await producer.start()
    try:
        topic = Topics.from_settings(settings).events
        pending = []
        for key, value in records:
            pending.append(await producer.send(topic, value, key=key))
            if len(pending) >= 20_000:
                await asyncio.gather(*pending)
                pending.clear()
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def ceiling(settings: Settings) -> float:
    """A bare consumer that decodes every record with orjson."""
    consumer = kafka.consumer(settings, group_id=None)
    topic = Topics.from_settings(settings).events
    partitions = [TopicPartition(topic, p) for p in range(settings.events_partitions)]
    consumer.assign(partitions)
    await consumer.start()
    try:
        for tp in partitions:
            consumer.seek(tp, 0)
        seen = 0
        started = time.perf_counter()
        while seen < EVENTS:
            batch = await consumer.getmany(timeout_ms=1000, max_records=2_000)
            for records in batch.values():
                for record in records:
                    orjson.loads(record.value)
                seen += len(records)
        return seen / (time.perf_counter() - started)
    finally:
        await consumer.stop()


async def evaluator_rate(settings: Settings) -> float:
    registry = new_registry()
    stop = asyncio.Event()
    task = asyncio.create_task(run_evaluator(settings, stop, registry=registry))
    first: tuple[float, float] | None = None
    try:
        while True:
            if task.done():
                task.result()
                raise RuntimeError("evaluator exited")
            count = registry.get_sample_value("slawatch_events_evaluated_total") or 0.0
            now = time.perf_counter()
            if first is None and count > 0:
                first = (now, count)
            if count >= EVENTS:
                assert first is not None
                return (count - first[1]) / (now - first[0])
            await asyncio.sleep(0.02)
    finally:
        stop.set()
        await asyncio.wait_for(task, 30)


def rate_in_fresh_process(settings: Settings) -> float:
    """:func:`evaluator_rate` in a new interpreter: one evaluator per process, as in
    production, so nothing an earlier run left in this process (FastAPI keeps every
    app's endpoints in a process-wide cache) weighs on the next one."""
    done = subprocess.run(
        [sys.executable, "-m", "bench.bench_evaluator", settings.model_dump_json()],
        check=True,
        capture_output=True,
        text=True,
    )
    return float(done.stdout.strip().splitlines()[-1])


async def throughput(infra: Any, results: Results, data: Path) -> None:
    records = events()
    for quantile in (False, True):
        for _ in range(REPEATS):
            settings = Settings(
                kafka_bootstrap=infra.kafka_bootstrap,
                database_url=infra.database_url,
                topic_prefix=f"b{uuid.uuid4().hex[:8]}",
                data_dir=data,
                # A free port: a fixed one collides with any other evaluator running here.
                evaluator_port=free_port(),
                events_partitions=4,
                kafka_session_timeout_ms=6_000,
                kafka_heartbeat_interval_ms=500,
                log_level="WARNING",
            )
            await ensure_topics(settings)
            database = db.engine(settings)
            try:
                async with db.sessions(database)() as session:
                    await session.execute(text("TRUNCATE definitions CASCADE"))
                    await apply(session, agreements(quantile))
                    await session.commit()
            finally:
                await database.dispose()
            await produce(settings, records)
            bare = await ceiling(settings)
            results.add("evaluator.ceiling.events_per_s", bare, "events/s")
            rate = await asyncio.to_thread(rate_in_fresh_process, settings)
            name = "ratio_quantile" if quantile else "ratio"
            results.add(f"evaluator.{name}.events_per_s", rate, "events/s")
            if quantile:
                results.add("evaluator.ratio_quantile.fraction_of_ceiling", rate / bare, "fraction")


def burn_rate_catalog(groups: bool) -> Catalog:
    doc = parse_document(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Agreement",
            "metadata": {"name": "acme"},
            "spec": {
                "type": "SLA",
                "objectives": [
                    {
                        "name": "availability",
                        "kind": "ratio",
                        "service": "checkout",
                        "good": {"outcome": "good"},
                        "target": 0.999,
                        "window": "30d",
                        "groupBy": ["customer"] if groups else [],
                        "alerting": {"policy": "burn-rate"},
                    }
                ],
            },
        }
    )
    assert isinstance(doc, Agreement)
    return Catalog({"acme": doc}, {})


def memory_and_restore(results: Results) -> None:
    engine = Engine(compile_catalog(burn_rate_catalog(True), lambda: 0), allowed_lateness_ms=0)
    for objective in engine.objectives.values():
        objective.max_groups = 200_000  # type: ignore[attr-defined]
    engine.assign(0, None)
    for i in range(100_000):
        event = Event(
            id=f"g{i}",
            service="checkout",
            type="request",
            time=T0 + i * 40,
            outcome="good" if i % 7 else "bad",
            attributes={"customer": f"c{i}"},
        )
        engine.process(0, event)
    shard = engine._partitions[0].shards["acme/availability"]
    assert isinstance(shard, BurnRateShard)
    sizes = [group_nbytes(g) for g in shard.groups.values()]
    results.add("evaluator.bytes_per_group", sum(sizes) / len(sizes), "bytes")
    snapshot = engine.snapshot(0)
    for _ in range(REPEATS):
        restored = Engine(
            compile_catalog(burn_rate_catalog(True), lambda: 0), allowed_lateness_ms=0
        )
        started = time.perf_counter()
        restored.assign(0, snapshot)
        results.add("evaluator.restore_100k_groups_s", time.perf_counter() - started, "s")
    results.add("evaluator.snapshot_100k_groups_bytes", len(snapshot), "bytes")


async def run(results: Results) -> None:
    if not os.environ.get("BENCH_SKIP_RESTORE"):
        memory_and_restore(results)
    with tempfile.TemporaryDirectory(prefix="bench-evaluator-") as tmp:
        data = Path(tmp)
        with embedded_infra(
            need_kafka=True, need_postgres=True, data_dir=data, kafka_port=0, postgres_port=0
        ) as infra:
            assert infra.database_url is not None
            await db.migrate(infra.database_url)
            await throughput(infra, results, data)


if __name__ == "__main__":
    # ``python -m bench.bench_evaluator SETTINGS_JSON``: one throughput run, printed.
    print(asyncio.run(evaluator_rate(Settings.model_validate_json(sys.argv[1]))))
