"""CloudEvents conformance (structured, batch, binary), alert webhooks, dedup and
backpressure through the HTTP app with a fake publisher."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence

import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.api import IngestDeps, create_app
from services.ingest.backpressure import Backpressure
from services.ingest.metrics import IngestMetrics
from services.ingest.records import OutRecord
from shared.schemas import Event
from shared.topics import Topics
from tests.keys import api_client, static_auth
from tests.unit.ingest.test_api import FakePublisher, Harness

NOW = 1_800_000_000_000
T0 = 1_700_000_000_000
TOPICS = Topics.from_prefix("u")


class Clock:
    def __init__(self) -> None:
        self.now = NOW

    def __call__(self) -> int:
        return self.now


@pytest.fixture
def clock() -> Clock:
    return Clock()


@pytest.fixture
def fake() -> FakePublisher:
    return FakePublisher()


async def _harness(publisher: object, clock: Clock, **overrides: object) -> AsyncIterator[Harness]:
    registry = CollectorRegistry()
    values: dict[str, object] = {
        "publisher": publisher,
        "topics": TOPICS,
        "metrics": IngestMetrics(registry),
        "clock": clock,
        "timer": clock,
        "max_body_bytes": 64 * 1024,
        "max_batch_items": 5,
        "new_id": lambda: "generated",
        "retry_backoff_s": 0,
    }
    values.update(overrides)
    app = create_app(IngestDeps(**values), registry, {}, auth=static_auth())  # type: ignore[arg-type]
    async with api_client(app, "http://ingest") as client:
        yield Harness(client, publisher, registry)  # type: ignore[arg-type]


@pytest.fixture
async def api(fake: FakePublisher, clock: Clock) -> AsyncIterator[Harness]:
    async for harness in _harness(fake, clock):
        yield harness


def sent(api: Harness) -> list[Event]:
    return [Event.from_json(r.value) for r in api.publisher.sent]


CE = {
    "specversion": "1.0",
    "id": "ce-1",
    "source": "/shop/checkout",
    "type": "request",
    "time": "2026-11-28T13:00:00Z",
    "subject": "order-42",
    "data": {"service": "checkout", "outcome": "good", "value": 12.5},
}

# -- CloudEvents -------------------------------------------------------------------------


async def test_structured_mode_maps_the_context_attributes(api: Harness) -> None:
    response = await api.client.post(
        "/v1/events",
        content=orjson.dumps(CE),
        headers={"content-type": "application/cloudevents+json; charset=utf-8"},
    )
    assert response.status_code == 202, response.text
    (event,) = sent(api)
    assert event == Event(
        id="ce-1",
        service="checkout",
        type="request",
        time=1795870800000,
        outcome="good",
        value=12.5,
        entity="order-42",
        source="/shop/checkout",
        received_at=NOW,
    )


async def test_batch_mode_has_per_item_results(api: Harness) -> None:
    bad = {k: v for k, v in CE.items() if k != "source"} | {"id": "ce-2"}
    wrong_version = CE | {"id": "ce-3", "specversion": "0.3"}
    extension = CE | {"id": "ce-4", "service": "payments", "data": {"outcome": "bad"}}
    body = orjson.dumps([CE, bad, wrong_version, extension, 7])
    response = await api.client.post(
        "/v1/events", content=body, headers={"content-type": "application/cloudevents-batch+json"}
    )
    assert response.status_code == 202, response.text
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "accepted"),
        (1, "rejected"),
        (2, "rejected"),
        (3, "accepted"),
        (4, "rejected"),
    ]
    assert results[1]["errors"][0]["field"] == "source"
    assert results[2]["errors"][0]["field"] == "specversion"
    assert [(e.id, e.service) for e in sent(api)] == [("ce-1", "checkout"), ("ce-4", "payments")]


async def test_binary_mode_reads_ce_headers_and_data_body(api: Harness) -> None:
    headers = {
        "content-type": "application/json",
        "ce-specversion": "1.0",
        "ce-id": "bin-1",
        "ce-source": "urn:probe%3Aeu",
        "ce-type": "check",
        "ce-time": "2026-11-28T13:00:00.5%2B01:00",
    }
    data = {"service": "checkout", "outcome": "bad", "attributes": {"region": "eu"}}
    response = await api.client.post("/v1/events", content=orjson.dumps(data), headers=headers)
    assert response.status_code == 202, response.text
    (event,) = sent(api)
    assert (event.id, event.type, event.source, event.time) == (
        "bin-1",
        "check",
        "urn:probe:eu",
        1795867200500,
    )
    assert event.attributes == {"region": "eu"}


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"data_base64": "AAA="}, "data_base64"),
        ({"datacontenttype": "text/plain"}, "datacontenttype"),
        ({"data": [1]}, "data"),
        ({"data": {"service": "checkout", "id": "x"}}, "data.id"),
        ({"data": {"service": "checkout", "colour": "red"}}, "data.colour"),
        ({"type": ""}, "type"),
        ({"time": "yesterday"}, "time"),
    ],
)
async def test_structured_rejections_name_the_field(
    api: Harness, change: dict[str, object], field: str
) -> None:
    response = await api.client.post(
        "/v1/events",
        content=orjson.dumps(CE | change),
        headers={"content-type": "application/cloudevents+json"},
    )
    assert response.status_code == 422, response.text
    assert field in [e["field"] for e in response.json()["errors"]]


async def test_binary_mode_with_non_json_data_is_415(api: Harness) -> None:
    headers = {"content-type": "text/plain", "ce-specversion": "1.0", "ce-id": "1"}
    response = await api.client.post("/v1/events", content=b"hi", headers=headers)
    assert response.status_code == 415


async def test_structured_body_must_be_an_object(api: Harness) -> None:
    response = await api.client.post(
        "/v1/events", content=b"[]", headers={"content-type": "application/cloudevents+json"}
    )
    assert response.status_code == 400


# -- alert webhooks ----------------------------------------------------------------------

ALERT = {
    "status": "firing",
    "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "page"},
    "annotations": {"summary": "5xx above 1%"},
    "startsAt": "2026-11-28T13:00:00.123456789Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "generatorURL": "http://prometheus/graph",
    "fingerprint": "a1b2c3d4e5f60718",
}


def webhook(*alerts: object) -> bytes:
    return orjson.dumps(
        {"version": "4", "status": "firing", "receiver": "slawatch", "alerts": list(alerts)}
    )


async def test_alertmanager_firing_and_resolved(api: Harness) -> None:
    resolved = ALERT | {"status": "resolved", "endsAt": "2026-11-28T13:05:00Z"}
    response = await api.client.post(
        "/v1/integrations/alertmanager",
        content=webhook(ALERT, resolved),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    firing, done = sent(api)
    assert firing.model_dump(exclude_none=True) == {
        "schema_version": 1,
        "id": "a1b2c3d4e5f60718@1795870800123",
        "service": "checkout",
        "type": "alert.firing",
        "time": 1795870800123,
        "outcome": "bad",
        "entity": "a1b2c3d4e5f60718",
        "attributes": {"alertname": "HighErrorRate", "severity": "page"},
        "source": "alertmanager",
        "received_at": NOW,
    }
    assert (done.id, done.type, done.outcome, done.time) == (
        "a1b2c3d4e5f60718@1795870800123/resolved",
        "alert.resolved",
        "good",
        1795871100000,
    )


async def test_service_label_is_configurable_with_fallbacks(api: Harness) -> None:
    by_job = ALERT | {"labels": {"alertname": "Down", "job": "payments"}}
    missing = ALERT | {"labels": {"alertname": "Down"}}
    response = await api.client.post(
        "/v1/integrations/alertmanager?service_label=service,job",
        content=webhook(ALERT, by_job, missing),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    assert [r["status"] for r in response.json()["results"]] == [
        "accepted",
        "accepted",
        "rejected",
    ]
    assert [e.service for e in sent(api)] == ["checkout", "payments"]


async def test_grafana_webhook_takes_the_single_value(api: Harness) -> None:
    alert = ALERT | {"values": {"B": 0.042}, "fingerprint": ""}
    response = await api.client.post(
        "/v1/integrations/grafana",
        content=webhook(alert),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    (event,) = sent(api)
    assert (event.source, event.value) == ("grafana", 0.042)
    assert event.entity is not None
    assert len(event.entity) == 16  # derived from the labels


@pytest.mark.parametrize(
    ("body", "status"),
    [(b"{}", 400), (b"[]", 400), (orjson.dumps({"alerts": []}), 400), (b"{", 400)],
)
async def test_bad_webhook_bodies(api: Harness, body: bytes, status: int) -> None:
    response = await api.client.post(
        "/v1/integrations/alertmanager", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == status


async def test_invalid_alerts_only_is_422(api: Harness) -> None:
    response = await api.client.post(
        "/v1/integrations/alertmanager",
        content=webhook(ALERT | {"status": "pending"}, "x"),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 422
    assert [(e["index"], e["field"]) for e in response.json()["errors"]] == [
        (0, "status"),
        (1, None),
    ]


# -- dedup -------------------------------------------------------------------------------


def ev(i: int) -> dict[str, object]:
    return {"id": f"e{i}", "service": "checkout", "type": "request", "time": T0 + i}


async def test_a_retried_batch_is_not_produced_twice(api: Harness, clock: Clock) -> None:
    headers = {"content-type": "application/json"}
    first = await api.client.post("/v1/events", content=orjson.dumps([ev(0)]), headers=headers)
    assert first.status_code == 202
    again = await api.client.post(
        "/v1/events", content=orjson.dumps([ev(0), ev(1)]), headers=headers
    )
    assert again.json()["results"] == [
        {"index": 0, "status": "accepted", "id": "e0", "duplicate": True},
        {"index": 1, "status": "accepted", "id": "e1"},
    ]
    assert [e.id for e in sent(api)] == ["e0", "e1"]
    assert api.metric("slawatch_ingest_duplicates_total") == 1
    clock.now += 300_001  # past the horizon: produced again
    await api.client.post("/v1/events", content=orjson.dumps([ev(0)]), headers=headers)
    assert [e.id for e in sent(api)] == ["e0", "e1", "e0"]


async def test_failed_ids_are_not_remembered(api: Harness) -> None:
    api.publisher.fail = frozenset({"e0"})
    headers = {"content-type": "application/json"}
    assert (
        await api.client.post("/v1/events", content=orjson.dumps(ev(0)), headers=headers)
    ).status_code == 503
    api.publisher.fail = frozenset()
    api.publisher.is_ready = True
    # the intake is open for the cooldown after a total failure
    response = await api.client.post("/v1/events", content=orjson.dumps(ev(0)), headers=headers)
    assert response.status_code == 503
    assert response.json()["type"] == "urn:slawatch:problem:overloaded"


# -- backpressure ------------------------------------------------------------------------


class BlockedPublisher:
    """Holds every send until ``release`` is set (a broker that does not answer)."""

    def __init__(self) -> None:
        self.release = asyncio.Event()
        self.started = asyncio.Event()
        self.sent: list[OutRecord] = []

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        self.started.set()
        await self.release.wait()
        self.sent.extend(records)
        return [None] * len(records)

    async def ready(self) -> bool:
        return True


async def test_in_flight_bound_answers_503_then_recovers(clock: Clock) -> None:
    publisher = BlockedPublisher()
    async for api in _harness(publisher, clock, max_inflight=3, publish_timeout_s=30):
        headers = {"content-type": "application/json"}
        body = orjson.dumps([ev(0), ev(1), ev(2)])
        first = asyncio.create_task(api.client.post("/v1/events", content=body, headers=headers))
        await publisher.started.wait()
        second = await api.client.post("/v1/events", content=orjson.dumps(ev(3)), headers=headers)
        assert second.status_code == 503
        assert second.headers["retry-after"] == "1"
        assert second.json()["type"] == "urn:slawatch:problem:overloaded"
        assert (await api.client.get("/readyz")).json()["checks"]["intake"]["ok"] is False
        assert api.metric("slawatch_ingest_inflight_events") == 3
        publisher.release.set()
        assert (await first).status_code == 202
        assert (await api.client.get("/readyz")).status_code == 200
        third = await api.client.post("/v1/events", content=orjson.dumps(ev(3)), headers=headers)
        assert third.status_code == 202


async def test_timed_out_send_keeps_its_slots_until_it_ends(clock: Clock) -> None:
    publisher = BlockedPublisher()
    async for api in _harness(publisher, clock, max_inflight=2, publish_timeout_s=0.05):
        headers = {"content-type": "application/json"}
        body = orjson.dumps([ev(0), ev(1)])
        response = await api.client.post("/v1/events", content=body, headers=headers)
        assert response.status_code == 503
        assert response.json()["type"] == "urn:slawatch:problem:unavailable"
        assert "not acknowledged within 0.05 s" in response.json()["errors"][0]["message"]
        assert (await api.client.get("/readyz")).status_code == 503
        clock.now += 1_001  # cooldown over, but the old send still holds the slots
        refused = await api.client.post("/v1/events", content=body, headers=headers)
        assert refused.status_code == 503
        publisher.release.set()
        while api.metric("slawatch_ingest_inflight_events"):
            await asyncio.sleep(0)
        accepted = await api.client.post("/v1/events", content=body, headers=headers)
        assert accepted.status_code == 202


def test_backpressure_rules() -> None:
    clock = Clock()
    gate = Backpressure(max_inflight=10, cooldown_ms=2_500, clock=clock)
    assert gate.retry_after_s == 3
    assert gate.admit(25)  # alone: admitted however large
    assert not gate.admit(1)
    gate.release(25)
    assert gate.admit(4) and gate.admit(6) and not gate.admit(1)
    gate.release(10)
    gate.failed()
    assert not gate.admit(1)
    clock.now += 2_500
    assert gate.admit(1)
    gate.failed()
    gate.succeeded()
    assert gate.admit(1)


GRAFANA_PAYLOAD = {  # the shape of Grafana's documented webhook example
    "receiver": "My Super Webhook",
    "status": "firing",
    "orgId": 1,
    "alerts": [
        {
            "status": "firing",
            "labels": {"alertname": "High memory usage", "team": "blue", "zone": "us-1"},
            "annotations": {"description": "The system has high memory usage"},
            "startsAt": "2021-10-12T09:51:03.157076+02:00",
            "endsAt": "0001-01-01T00:00:00Z",
            "generatorURL": "https://play.grafana.org/alerting/1afz29v7z/edit",
            "fingerprint": "c6eadffa33fcdf37",
            "silenceURL": "https://play.grafana.org/alerting/silence/new",
            "dashboardURL": "",
            "panelURL": "",
            "values": {"B": 44.23943737541908, "C": 1},
        },
        {
            "status": "resolved",
            "labels": {"alertname": "High CPU usage", "team": "blue", "zone": "eu-1"},
            "annotations": {},
            "startsAt": "2021-10-12T09:56:03.157076+02:00",
            "endsAt": "2021-10-12T10:01:03.157076+02:00",
            "generatorURL": "https://play.grafana.org/alerting/d1rdpdv7k/edit",
            "fingerprint": "bc97ff14869b13e3",
            "values": {"B": 44.23943737541908},
        },
    ],
    "groupLabels": {},
    "commonLabels": {"team": "blue"},
    "commonAnnotations": {},
    "externalURL": "https://play.grafana.org/",
    "version": "1",
    "groupKey": "{}:{}",
    "truncatedAlerts": 0,
    "title": "[FIRING:1, RESOLVED:1]  (blue)",
    "state": "alerting",
    "message": "**Firing** ...",
}


async def test_grafana_documented_payload(api: Harness) -> None:
    response = await api.client.post(
        "/v1/integrations/grafana?service_label=team",
        content=orjson.dumps(GRAFANA_PAYLOAD),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 202, response.text
    firing, resolved = sent(api)
    assert (firing.id, firing.service, firing.type, firing.value) == (
        "c6eadffa33fcdf37@1634025063157",
        "blue",
        "alert.firing",
        None,  # two values: which one is meant is unknown, so none is taken
    )
    assert firing.attributes == {"alertname": "High memory usage", "zone": "us-1"}
    assert (resolved.type, resolved.outcome, resolved.time, resolved.value) == (
        "alert.resolved",
        "good",
        1634025663157,
        44.23943737541908,
    )


async def test_openapi_lists_the_formats_and_integrations(api: Harness) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    content = spec["paths"]["/v1/events"]["post"]["requestBody"]["content"]
    assert {"application/cloudevents+json", "application/cloudevents-batch+json"} <= set(content)
    for flavour in ("alertmanager", "grafana"):
        operation = spec["paths"][f"/v1/integrations/{flavour}"]["post"]
        assert [p["name"] for p in operation["parameters"]] == ["service_label", "service"]
        assert {"202", "400", "413", "415", "422", "503"} <= set(operation["responses"])
    assert "gzip" in spec["info"]["description"]
