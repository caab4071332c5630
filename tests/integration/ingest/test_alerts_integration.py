"""Alert webhooks on the real broker: unmapped alerts answered, counted and not produced,
the default service of the URL, and the real Alertmanager configured with the lines
docs/ingest.md shows."""

from __future__ import annotations

import asyncio
import contextlib
import re
import shutil
import subprocess
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import orjson
import pytest
import yaml

from shared.apikeys.scopes import Scope
from shared.embedded import free_port
from shared.schemas import Event
from shared.settings import Settings
from shared.timeutil import to_rfc3339, wall_clock_ms
from tests.integration.ingest.conftest import Ingest, read_topic, running_ingest
from tests.keys import stored_key

pytestmark = pytest.mark.integration

ALERTMANAGER = shutil.which("prometheus-alertmanager") or shutil.which("alertmanager")
DOCS = Path(__file__).resolve().parents[3] / "docs" / "ingest.md"
JSON = {"content-type": "application/json"}
UNMAPPED = "slawatch_ingest_alerts_unmapped_total"

FIRING = {
    "status": "firing",
    "startsAt": "2026-11-28T13:00:00Z",
    "endsAt": "0001-01-01T00:00:00Z",
}


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


def alert(fingerprint: str, **labels: str) -> dict[str, object]:
    return FIRING | {"fingerprint": fingerprint, "labels": labels}


async def test_partly_mapped_payload_on_the_real_broker(ingest: Ingest) -> None:
    payload = {
        "alerts": [
            alert("f0", alertname="HighErrorRate", service="checkout"),
            alert("f1", alertname="NodeDown", instance="db-1"),  # the URL's default
            alert("f2", alertname="Disk", service="Storage Team"),
            "not an alert",
        ]
    }
    response = await ingest.client.post(
        "/v1/integrations/grafana?service=payments", content=orjson.dumps(payload), headers=JSON
    )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"], body["failed"]) == (2, 2, 0)
    assert [(r["status"], r["alertname"], r.get("reason")) for r in body["results"]] == [
        ("accepted", "HighErrorRate", None),
        ("accepted", "NodeDown", None),
        ("rejected", "Disk", "invalid_service"),
        ("rejected", None, "not_an_object"),
    ]
    # exactly the two mapped alerts reach the topic (read_topic waits for more)
    got = await read_topic(ingest.settings, ingest.topics.events, 2, extra_s=1.0)
    events = sorted((Event.from_json(v) for _, v in got), key=lambda e: e.id)
    assert [(e.id, e.service, e.source) for e in events] == [
        ("f0@1795870800000", "checkout", "grafana"),
        ("f1@1795870800000", "payments", "grafana"),
    ]
    assert ingest.metric(UNMAPPED, flavour="grafana", reason="invalid_service") == 1
    assert ingest.metric(UNMAPPED, flavour="grafana", reason="not_an_object") == 1
    assert ingest.metric(UNMAPPED, flavour="alertmanager", reason="invalid_service") == 0


async def test_bad_default_service_is_refused_before_anything_is_stored(ingest: Ingest) -> None:
    payload = {"alerts": [alert("f9", alertname="NodeDown")]}
    response = await ingest.client.post(
        "/v1/integrations/alertmanager?service=Payments",
        content=orjson.dumps(payload),
        headers=JSON,
    )
    assert response.status_code == 422
    assert [e["field"] for e in response.json()["errors"]] == ["service"]
    mapped = await ingest.client.post(
        "/v1/integrations/alertmanager?service=payments",
        content=orjson.dumps(payload),
        headers=JSON,
    )
    assert mapped.status_code == 202, mapped.text
    (only,) = await read_topic(ingest.settings, ingest.topics.events, 1, extra_s=1.0)
    assert Event.from_json(only[1]).service == "payments"


# -- the real Alertmanager, configured as the docs say --------------------------------------


def documented(marker: str, ingest_url: str, key: str = "sw_...") -> str:
    """The fenced block after ``<!-- marker -->`` in docs/ingest.md, host and key filled in."""
    found = re.search(rf"<!-- {marker} -->\n```yaml\n(.*?)```", DOCS.read_text(), re.DOTALL)
    assert found is not None, f"docs/ingest.md lost its {marker!r} block"
    return found.group(1).replace("http://ingest:8080", ingest_url).replace("sw_...", key)


async def test_the_documented_grafana_contact_point(ingest: Ingest) -> None:
    provisioned = yaml.safe_load(documented("grafana-contact-point", ""))
    (receiver,) = provisioned["contactPoints"][0]["receivers"]
    assert receiver["type"] == "webhook"
    settings = receiver["settings"]
    assert (settings["httpMethod"], settings["authorization_scheme"]) == ("POST", "Bearer")
    payload = {"alerts": [alert("g1", alertname="NodeDown"), alert("g2", job="search")]}
    response = await ingest.client.post(
        settings["url"], content=orjson.dumps(payload), headers=JSON
    )
    assert response.status_code == 202, response.text
    got = await read_topic(ingest.settings, ingest.topics.events, 2, extra_s=1.0)
    events = sorted((Event.from_json(v) for _, v in got), key=lambda e: e.id)
    assert [(e.service, e.source) for e in events] == [
        ("checkout", "grafana"),
        ("search", "grafana"),
    ]


@contextlib.asynccontextmanager
async def running_alertmanager(
    settings: Settings, tmp_path: Path, *, default_service: bool = True
) -> AsyncIterator[httpx.AsyncClient]:
    """The real Alertmanager with the documented receiver (without its ``&service=``
    when ``default_service`` is false), ready."""
    if ALERTMANAGER is None:
        pytest.skip("prometheus-alertmanager is not installed (Debian: prometheus-alertmanager)")
    key = await stored_key(settings, scopes=[Scope.EVENTS_WRITE])
    port = free_port()
    ingest_url = f"http://127.0.0.1:{settings.ingest_port}"
    receivers = documented("alertmanager-receiver", ingest_url, key)
    assert "?service_label=service,job&service=checkout" in receivers
    if not default_service:
        receivers = receivers.replace("&service=checkout", "")
    config = tmp_path / "alertmanager.yml"
    route = (
        "route:\n  receiver: slawatch\n  group_by: [alertname]\n  group_wait: 100ms\n"
        "  group_interval: 500ms\n  repeat_interval: 1h\n"
    )
    config.write_text(route + receivers)
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
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", timeout=5.0) as am:
            deadline = asyncio.get_running_loop().time() + 15
            while True:
                try:
                    if (await am.get("/-/ready")).status_code == 200:
                        break
                except httpx.TransportError:
                    pass
                assert asyncio.get_running_loop().time() < deadline, "alertmanager not ready"
                await asyncio.sleep(0.1)
            yield am
    finally:
        process.terminate()
        try:
            process.wait(10)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()


async def test_real_alertmanager_sees_the_422_of_an_unmapped_payload(
    ingest: Ingest, tmp_path: Path
) -> None:
    async with running_alertmanager(ingest.settings, tmp_path, default_service=False) as am:
        started = to_rfc3339(wall_clock_ms() - 60_000)
        labels = {"alertname": "NodeDown", "instance": "db-1"}
        fired = await am.post("/api/v2/alerts", json=[{"labels": labels, "startsAt": started}])
        assert fired.status_code == 200, fired.text
        failed = 'alertmanager_notifications_failed_total{integration="webhook"}'
        deadline = asyncio.get_running_loop().time() + 20
        while failed + " 1" not in (await am.get("/metrics")).text:
            assert asyncio.get_running_loop().time() < deadline, "no failed notification"
            await asyncio.sleep(0.1)
    assert ingest.metric(UNMAPPED, flavour="alertmanager", reason="no_service") == 1
    assert ingest.metric("slawatch_ingest_requests_rejected_total", reason="invalid_events") == 1
    shown = (tmp_path / "alertmanager.log").read_text()
    assert "unexpected status code 422" in shown
    assert "NodeDown" in shown  # the answer's body is in the sender's log


async def test_real_alertmanager_with_the_documented_url(ingest: Ingest, tmp_path: Path) -> None:
    async with running_alertmanager(ingest.settings, tmp_path) as am:
        started = wall_clock_ms() - 60_000
        fired = await am.post(
            "/api/v2/alerts",
            json=[
                # no service label: the URL's default service
                {
                    "labels": {"alertname": "NodeDown", "instance": "db-1"},
                    "startsAt": to_rfc3339(started),
                },
                # the second service label of the URL
                {
                    "labels": {"alertname": "JobDown", "job": "payments"},
                    "startsAt": to_rfc3339(started),
                },
            ],
        )
        assert fired.status_code == 200, fired.text
        got = await read_topic(ingest.settings, ingest.topics.events, 2, wait_s=20)
    events = {e.attributes["alertname"]: e for e in (Event.from_json(v) for _, v in got)}
    assert sorted(events) == ["JobDown", "NodeDown"]
    assert (events["NodeDown"].service, events["NodeDown"].type) == ("checkout", "alert.firing")
    assert events["NodeDown"].attributes == {"alertname": "NodeDown", "instance": "db-1"}
    assert events["JobDown"].service == "payments"
    assert events["JobDown"].time == started
