"""HTTP formats end to end on the real broker: CloudEvents in all three modes, gzip,
the real Prometheus Alertmanager's webhook, and a broker that stops and comes back."""

from __future__ import annotations

import asyncio
import gzip
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest

from shared.apikeys.scopes import Scope
from shared.embedded import free_port, start_broker
from shared.schemas import Event
from shared.settings import Settings
from shared.timeutil import wall_clock_ms
from shared.topics import ensure_topics
from tests.integration.ingest.conftest import Ingest, read_topic, running_ingest
from tests.keys import stored_key

pytestmark = pytest.mark.integration

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")


@pytest.fixture
def http_settings(make_settings) -> Settings:  # type: ignore[no-untyped-def]
    built: Settings = make_settings(
        ingest_port=free_port(),
        kafka_session_timeout_ms=3_000,
        kafka_heartbeat_interval_ms=300,
        shutdown_grace_s=3.0,
    )
    return built


@pytest.fixture
async def ingest(http_settings: Settings) -> AsyncIterator[Ingest]:
    async with running_ingest(http_settings) as running:
        yield running


async def test_cloudevents_all_three_modes_and_gzip(ingest: Ingest) -> None:
    ce = {
        "specversion": "1.0",
        "source": "/probe",
        "type": "check",
        "time": "2026-11-28T13:00:00Z",
        "data": {"service": "checkout", "outcome": "good"},
    }
    structured = await ingest.client.post(
        "/v1/events",
        content=orjson.dumps(ce | {"id": "s1"}),
        headers={"content-type": "application/cloudevents+json"},
    )
    batch = await ingest.client.post(
        "/v1/events",
        content=gzip.compress(orjson.dumps([ce | {"id": "b1"}, ce | {"id": "b2"}])),
        headers={
            "content-type": "application/cloudevents-batch+json",
            "content-encoding": "gzip",
        },
    )
    binary = await ingest.client.post(
        "/v1/events",
        content=orjson.dumps({"service": "checkout", "outcome": "bad"}),
        headers={
            "content-type": "application/json",
            "ce-specversion": "1.0",
            "ce-id": "x1",
            "ce-source": "/probe",
            "ce-type": "check",
        },
    )
    assert [r.status_code for r in (structured, batch, binary)] == [202, 202, 202]
    got = await read_topic(ingest.settings, ingest.topics.events, 4)
    events = {Event.from_json(v).id: Event.from_json(v) for _, v in got}
    assert sorted(events) == ["b1", "b2", "s1", "x1"]
    assert events["x1"].outcome == "bad"
    assert events["s1"].time == 1795870800000


async def test_gzip_bomb_refused(ingest: Ingest) -> None:
    bomb = gzip.compress(b" " * (ingest.settings.max_body_bytes * 20))
    assert len(bomb) < ingest.settings.max_body_bytes
    response = await ingest.client.post(
        "/v1/events",
        content=bomb,
        headers={"content-type": "application/json", "content-encoding": "gzip"},
    )
    assert response.status_code == 413
    assert response.json()["type"] == "urn:slawatch:problem:body-too-large"


# -- the real Alertmanager --------------------------------------------------------------


@pytest.fixture
async def alertmanager(http_settings: Settings, tmp_path: Path) -> AsyncIterator[str]:
    if ALERTMANAGER is None:
        pytest.skip("prometheus-alertmanager is not installed (Debian: prometheus-alertmanager)")
    # Alertmanager sends a bearer token of its own, as docs/ingest.md configures it
    key = await stored_key(http_settings, scopes=[Scope.EVENTS_WRITE])
    port = free_port()
    ingest_url = f"http://127.0.0.1:{http_settings.ingest_port}"
    config = tmp_path / "alertmanager.yml"
    config.write_text(
        f"""
route:
  receiver: slawatch
  group_by: [alertname]
  group_wait: 100ms
  group_interval: 500ms
  repeat_interval: 1h
receivers:
  - name: slawatch
    webhook_configs:
      - url: {ingest_url}/v1/integrations/alertmanager?service_label=service
        send_resolved: true
        http_config:
          authorization:
            credentials: {key}
"""
    )
    log = (tmp_path / "alertmanager.log").open("wb")
    process = subprocess.Popen(
        [
            ALERTMANAGER,
            f"--config.file={config}",
            f"--storage.path={tmp_path / 'am-data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        stdout=subprocess.DEVNULL,
        stderr=log,
    )
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def test_real_alertmanager_alert_reaches_the_events_topic(
    ingest: Ingest, alertmanager: str
) -> None:
    async with httpx.AsyncClient(base_url=alertmanager, timeout=5.0) as am:
        deadline = asyncio.get_running_loop().time() + 15
        while True:
            try:
                if (await am.get("/-/ready")).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert asyncio.get_running_loop().time() < deadline, "alertmanager not ready"
            await asyncio.sleep(0.1)
        labels = {"alertname": "CheckoutDown", "service": "checkout", "severity": "page"}
        started = wall_clock_ms() - 60_000
        fired = await am.post(
            "/api/v2/alerts",
            json=[{"labels": labels, "startsAt": _rfc3339(started)}],
        )
        assert fired.status_code == 200, fired.text
        (firing,) = await read_topic(ingest.settings, ingest.topics.events, 1)
        resolved_at = wall_clock_ms()
        done = await am.post(
            "/api/v2/alerts",
            json=[
                {
                    "labels": labels,
                    "startsAt": _rfc3339(started),
                    "endsAt": _rfc3339(resolved_at),
                }
            ],
        )
        assert done.status_code == 200, done.text
        got = await read_topic(ingest.settings, ingest.topics.events, 2, wait_s=20)
    events = [Event.from_json(v) for _, v in got]
    first = Event.from_json(firing[1])
    assert (first.type, first.outcome, first.service, first.time) == (
        "alert.firing",
        "bad",
        "checkout",
        started,
    )
    assert first.attributes == {"alertname": "CheckoutDown", "severity": "page"}
    assert first.source == "alertmanager"
    last = events[-1]
    assert (last.type, last.outcome, last.time) == ("alert.resolved", "good", resolved_at)
    assert last.id == f"{first.entity}@{started}/resolved"


def _rfc3339(ms: int) -> str:
    from shared.timeutil import to_rfc3339

    return to_rfc3339(ms)


# -- broker stopped, then back -----------------------------------------------------------


async def test_broker_down_is_503_then_recovers_without_restart(
    make_settings,  # type: ignore[no-untyped-def]
    tmp_path: Path,
) -> None:
    port = free_port()
    broker = start_broker(port, tmp_path / "broker-1.log")
    settings: Settings = make_settings(
        kafka_bootstrap=f"127.0.0.1:{port}",
        ingest_port=free_port(),
        kafka_session_timeout_ms=3_000,
        kafka_heartbeat_interval_ms=300,
        shutdown_grace_s=3.0,
    )
    body = orjson.dumps({"id": "a", "service": "checkout", "type": "request"})
    headers = {"content-type": "application/json"}
    options = {"publish_timeout_s": 2.0, "overload_cooldown_ms": 1_000}
    try:
        async with running_ingest(settings, http_options=options) as ingest:
            assert (
                await ingest.client.post("/v1/events", content=body, headers=headers)
            ).status_code == 202

            broker.stop()
            down = await ingest.client.post(
                "/v1/events",
                content=orjson.dumps({"id": "b", "service": "checkout", "type": "request"}),
                headers=headers,
            )
            assert down.status_code == 503, down.text
            assert down.headers["retry-after"] == "1"
            fast = await ingest.client.post("/v1/events", content=body, headers=headers)
            assert fast.status_code == 503  # failing fast while open, no broker wait
            assert (await ingest.client.get("/readyz")).status_code == 503

            broker = start_broker(port, tmp_path / "broker-2.log")
            await ensure_topics(settings)  # a memory broker comes back empty
            deadline = asyncio.get_running_loop().time() + 30
            while True:
                retry = await ingest.client.post(
                    "/v1/events",
                    content=orjson.dumps({"id": "c", "service": "checkout", "type": "request"}),
                    headers=headers,
                )
                if retry.status_code == 202:
                    break
                assert retry.status_code == 503, retry.text
                assert asyncio.get_running_loop().time() < deadline, retry.text
                await asyncio.sleep(int(retry.headers["retry-after"]) / 4)
            assert (await ingest.client.get("/readyz")).status_code == 200
            got = await read_topic(settings, ingest.topics.events, 1)
            ids = {Event.from_json(v).id for _, v in got}
            # "b" was answered 503 (retry with the same id) but may still have been
            # delivered once the broker came back: at-least-once, deduplicated by id
            assert "c" in ids and ids <= {"b", "c"}
    finally:
        broker.stop()
