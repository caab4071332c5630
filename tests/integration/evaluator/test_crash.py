"""Crash safety: a real evaluator process killed with SIGKILL at random points, several
times, then restarted, publishes the same breaches and ends with the same SLIs as an
uninterrupted (offline, same engine) run."""

from __future__ import annotations

import asyncio
import os
import random
import signal
import sys
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.evaluator.backtest import catalog_of, run
from shared import db
from shared.definitions.load import load_paths
from shared.definitions.store import apply
from shared.embedded import free_port
from shared.schemas import Event, group_key
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.evaluator.test_evaluator import eventually, produce, read_topic
from tests.keys import bearer, stored_key

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
KILLS = 3
DEFS = """
apiVersion: slawatch/v1
kind: Agreement
metadata: {name: shop}
spec:
  type: SLA
  objectives:
    - name: availability
      kind: ratio
      service: checkout
      select: {type: request}
      good: {outcome: good}
      target: 0.95
      window: 30d
      groupBy: [customer]
      alerting:
        policy: burn-rate
        minEvents: 10
        burnRates:
          - {severity: page, factor: 8, long: 2m, short: 30s}
          - {severity: ticket, factor: 2, long: 10m, short: 1m}
    - name: latency
      kind: quantile
      service: checkout
      select: {type: request}
      quantile: 0.9
      threshold: 300
      window: 1h
      groupBy: [customer]
      alerting: {minEvents: 10}
"""


def stream(count: int) -> list[Event]:
    rng = random.Random(7)
    out = []
    for i in range(count):
        t = T0 + i * 500 + rng.randrange(0, 3_000)  # out of order within the lateness
        phase = (i // 400) % 3 == 1
        out.append(
            Event(
                id=f"c{i}",
                service="checkout",
                type="request",
                time=t,
                outcome="bad" if phase and rng.random() < 0.6 else "good",
                value=900.0 if phase and rng.random() < 0.5 else float(rng.randrange(50, 250)),
                attributes={"customer": rng.choice(["acme", "globex", "initech"])},
                received_at=t + 5,
            )
        )
        if i % 50 == 0:
            out.append(out[-1])  # duplicate delivery
    return out


def child_env(settings: Settings, port: int) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "SLAWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
            "SLAWATCH_DATABASE_URL": settings.database_url or "",
            "SLAWATCH_TOPIC_PREFIX": settings.topic_prefix,
            "SLAWATCH_EVENTS_PARTITIONS": str(settings.events_partitions),
            "SLAWATCH_EVALUATOR_PORT": str(port),
            "SLAWATCH_IDLE_TICK_MS": "100",
            "SLAWATCH_CHECKPOINT_EVERY_EVENTS": "150",
            "SLAWATCH_KAFKA_SESSION_TIMEOUT_MS": "3000",
            "SLAWATCH_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
            "SLAWATCH_LOG_LEVEL": "WARNING",
        }
    )
    return env


async def statuses(port: int, key: str) -> dict[str, dict[str, Any]]:
    out: dict[str, dict[str, Any]] = {}
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", headers=bearer(key)
    ) as client:
        for name in ("availability", "latency"):
            try:
                response = await client.get(f"/v1/objectives/shop/{name}/status")
            except httpx.TransportError:
                return {}
            if response.status_code != 200:
                return {}
            for g in response.json()["groups"]:
                out[f"{name}|{group_key(g['group'])}"] = g
    return out


async def test_sigkill_at_random_points_changes_nothing(
    settings: Settings, engine: AsyncEngine, tmp_path: Path
) -> None:
    defs = tmp_path / "defs.yaml"
    defs.write_text(DEFS)
    documents = load_paths([defs])
    events = stream(3_000)
    reference = run(catalog_of(documents), events, clock=lambda: 0)
    expected_keys = {(b.id, b.kind, b.at) for b in reference.breaches}
    assert len(expected_keys) >= 6
    expected: dict[str, tuple[int, int]] = {}
    for name in ("availability", "latency"):
        ref_engine_status = reference_status(documents, events, f"shop/{name}")
        for key, counts in ref_engine_status.items():
            expected[f"{name}|{key}"] = counts

    async with db.sessions(engine)() as session:
        await apply(session, documents)
        await session.commit()

    port = free_port()
    key = await stored_key(settings)
    env = child_env(settings, port)
    log = (tmp_path / "evaluator.log").open("ab")
    rng = random.Random(11)
    chunks = [events[i : i + 300] for i in range(0, len(events), 300)]
    feeder = asyncio.create_task(feed(settings, chunks))

    async def start() -> asyncio.subprocess.Process:
        return await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "evaluator", env=env, stdout=log, stderr=log
        )

    try:
        for _ in range(KILLS):
            process = await start()
            await eventually(lambda: statuses(port, key), "the evaluator to serve", 30)
            await asyncio.sleep(rng.uniform(0.3, 2.5))  # a random point of the stream
            process.send_signal(signal.SIGKILL)
            await process.wait()
        await feeder
        process = await start()
        try:

            async def done() -> bool:
                got = await statuses(port, key)
                return {k: (g["good"], g["valid"]) for k, g in got.items()} == expected

            await eventually(done, "final SLIs equal to the uninterrupted run", 60)
        finally:
            process.send_signal(signal.SIGTERM)
            await asyncio.wait_for(process.wait(), 30)
    finally:
        feeder.cancel()
        log.close()

    topic = Topics.from_settings(settings).breaches
    raw = await read_topic(
        settings,
        topic,
        lambda got: expected_keys <= {key_of(r) for r in got},
        timeout_s=30,
    )
    assert {key_of(r) for r in raw} == expected_keys

    # Per-minute rollups: every counted event exactly once, despite the replays.
    async with engine.connect() as conn:
        rows = (
            await conn.execute(
                text(
                    "SELECT objective_id, sum(good), sum(valid) FROM evaluator_sli_rollups"
                    " GROUP BY objective_id"
                )
            )
        ).all()
    totals = {oid: (int(good), int(valid)) for oid, good, valid in rows}
    for name in ("availability", "latency"):
        want = [v for k, v in expected.items() if k.startswith(f"{name}|")]
        assert totals[f"shop/{name}"] == (sum(g for g, _ in want), sum(v for _, v in want))


def key_of(raw: bytes) -> tuple[str, str, int]:
    body = orjson.loads(raw)
    return (body["id"], body["kind"], body["at"])


def reference_status(
    documents: list[Any], events: list[Event], objective_id: str
) -> dict[str, tuple[int, int]]:
    from services.evaluator.engine import Engine
    from services.evaluator.objectives import compile_catalog

    reference = Engine(
        compile_catalog(catalog_of(documents), lambda: 0), allowed_lateness_ms=30_000
    )
    reference.assign(0, None)
    for event in events:
        reference.process(0, event)
        reference.tick(0)
    return {
        group_key(s.status.group): (s.status.good, s.status.valid)
        for s in reference.status(objective_id)
    }


async def feed(settings: Settings, chunks: list[list[Event]]) -> None:
    for chunk in chunks:
        await produce(settings, [e.to_json() for e in chunk])
        # Paced on purpose: the stream must still be arriving when the kills land.
        await asyncio.sleep(0.4)
