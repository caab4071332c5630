"""The whole stack as `slawatch up` runs it: three service processes on an embedded
broker and PostgreSQL, events in over HTTP, alerts out to a real local webhook."""

from __future__ import annotations

import asyncio
import contextlib
import os
import stat
import time
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request

from services.stack import Stack, running_stack
from shared.embedded import free_port, port_open
from shared.runtime import HttpServer
from shared.settings import Settings
from tests.infra.broker import TestBroker
from tests.keys import bearer

pytestmark = pytest.mark.e2e

DEFINITIONS = """
apiVersion: slawatch/v1
kind: Agreement
metadata: {{name: acme-checkout}}
spec:
  type: SLA
  provider: shopco
  consumer: acme
  objectives:
    - name: availability
      kind: ratio
      service: checkout
      select: {{type: request}}
      good: {{outcome: good}}
      target: 0.95
      window: 5m
      alerting: {{policy: threshold, minEvents: 10, severity: page}}
  notify: [{{match: {{}}, receivers: [test-hook]}}]
---
apiVersion: slawatch/v1
kind: Receiver
metadata: {{name: test-hook}}
spec: {{type: webhook, url: "http://127.0.0.1:{port}/alerts"}}
"""


class Inbox:
    """A real HTTP receiver that records every alert body."""

    def __init__(self) -> None:
        self.alerts: list[dict[str, Any]] = []
        self.keys: list[str] = []
        self.changed = asyncio.Condition()

    def app(self) -> FastAPI:
        app = FastAPI()

        @app.post("/alerts")
        async def alerts(request: Request) -> dict[str, str]:
            body = orjson.loads(await request.body())
            async with self.changed:
                self.alerts.append(body)
                self.keys.append(request.headers.get("idempotency-key", ""))
                self.changed.notify_all()
            return {"status": "ok"}

        return app

    async def wait_for(self, kind: str, timeout_s: float = 30.0) -> dict[str, Any]:
        def found() -> dict[str, Any] | None:
            return next((a for a in self.alerts if a["kind"] == kind), None)

        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(lambda: found() is not None)
        result = found()
        assert result is not None
        return result


@pytest.fixture
async def inbox() -> AsyncIterator[tuple[Inbox, int]]:
    box = Inbox()
    port = free_port()
    server = HttpServer(box.app(), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.started(), 10)
    yield box, port
    server.stop()
    await task


@pytest.fixture
async def stack(
    tmp_path: Path, inbox: tuple[Inbox, int], broker: TestBroker
) -> AsyncIterator[Stack]:
    (tmp_path / "defs").mkdir()
    (tmp_path / "defs" / "shop.yaml").write_text(DEFINITIONS.format(port=inbox[1]))
    # on Apache Kafka (make test-kafka) the stack uses the session's cluster, under a
    # prefix of its own; else it starts its embedded broker as `slawatch up` does
    on_kafka = broker.apache_kafka
    settings = Settings(
        kafka_bootstrap=broker.bootstrap if on_kafka else None,
        topic_replication_factor=broker.replication_factor if on_kafka else 1,
        database_url=None,
        data_dir=tmp_path / "data",
        embedded_kafka_port=0,
        embedded_postgres_port=0,
        ingest_port=free_port(),
        evaluator_port=free_port(),
        notifier_port=free_port(),
        topic_prefix=f"e2e{uuid.uuid4().hex[:8]}" if on_kafka else "e2e",
        kafka_session_timeout_ms=6_000,
        kafka_heartbeat_interval_ms=500,
        delivery_poll_interval_ms=100,
    )
    exits = contextlib.ExitStack()
    started = await asyncio.to_thread(
        exits.enter_context, running_stack(settings, [tmp_path / "defs"])
    )
    try:
        yield started
    finally:
        await asyncio.to_thread(exits.close)


def events(outcome: str, count: int, start: int) -> bytes:
    now = int(time.time() * 1000)
    lines = [
        orjson.dumps(
            {
                "id": f"{outcome}-{start + i}",
                "service": "checkout",
                "type": "request",
                "time": now,
                "outcome": outcome,
            }
        )
        for i in range(count)
    ]
    return b"\n".join(lines)


async def post(client: httpx.AsyncClient, url: str, body: bytes) -> None:
    response = await client.post(
        url, content=body, headers={"content-type": "application/x-ndjson"}
    )
    assert response.status_code == 202, response.text


async def test_breach_opens_and_resolves_end_to_end(stack: Stack, inbox: tuple[Inbox, int]) -> None:
    box, _ = inbox
    ingest = f"{stack.url('ingest')}/v1/events"
    async with httpx.AsyncClient(timeout=10, headers=bearer(stack.admin_key)) as client:
        await post(client, ingest, events("good", 5, 0))
        await post(client, ingest, events("bad", 10, 0))
        opened = await box.wait_for("breach.opened")

        assert opened["agreement"]["name"] == "acme-checkout"
        assert opened["agreement"]["type"] == "SLA"
        assert opened["objective"] == "availability"
        assert opened["service"] == "checkout"
        assert opened["severity"] == "page"
        window = opened["windows"][0]
        assert window["target"] == 0.95
        assert window["sli"] < 0.95

        await post(client, ingest, events("good", 300, 5))
        resolved = await box.wait_for("breach.resolved")
        assert resolved["id"] == opened["id"]
        assert resolved["windows"][0]["sli"] >= 0.95

        listed = (await client.get(f"{stack.url('notifier')}/v1/breaches")).json()
    breaches = listed["items"] if isinstance(listed, dict) else listed
    assert [b["id"] for b in breaches] == [opened["id"]]
    assert breaches[0]["status"] == "resolved"
    # one delivery per lifecycle event, identified by its idempotency key
    assert len(box.keys) == len(set(box.keys)) == 2


def test_stack_stops_without_leftovers(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("ingest", "evaluator", "notifier")}
    settings = Settings(
        kafka_bootstrap=None,
        database_url=None,
        data_dir=tmp_path / "data",
        embedded_kafka_port=free_port(),
        embedded_postgres_port=free_port(),
        topic_prefix="e2e",
        **{f"{name}_port": port for name, port in ports.items()},
    )
    keys = []
    for round_ in range(2):  # the second start reuses the data directory
        with running_stack(settings, []) as stack:
            pids = [c.process.pid for c in stack.services.values()]
            keys.append((stack.admin_key, stack.admin_key_created))
            assert stat.S_IMODE(stack.admin_key_file.stat().st_mode) == 0o600
            assert stack.admin_key_file.read_text().strip() == stack.admin_key
            with httpx.Client(headers=bearer(stack.admin_key)) as http:
                assert http.get(f"{stack.url('notifier')}/v1/breaches").status_code == 200
                assert httpx.get(f"{stack.url('notifier')}/v1/breaches").status_code == 401
            pids += [c.process.pid for c in stack.infra.children or []]
            codes = stack.stop_services()
        assert codes == {"notifier": 0, "evaluator": 0, "ingest": 0}, f"round {round_}"
        for pid in pids:
            with pytest.raises(ProcessLookupError):
                os.kill(pid, 0)
        used = [*ports.values(), settings.embedded_kafka_port, settings.embedded_postgres_port]
        assert not [p for p in used if port_open("127.0.0.1", p)]
    # the first start created the admin key, the second one reused it
    assert [created for _, created in keys] == [True, False]
    assert keys[0][0] == keys[1][0]
