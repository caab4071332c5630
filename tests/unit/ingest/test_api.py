"""The HTTP contract without a broker: a fake publisher injected into the app.

The 202 path against the real broker is covered in tests/integration/ingest.
"""

from __future__ import annotations

import gzip
from collections.abc import AsyncIterator, Sequence

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry

from services.ingest.api import IngestDeps, create_app
from services.ingest.metrics import IngestMetrics
from services.ingest.records import OutRecord
from shared.schemas import Event
from shared.topics import Topics
from tests.keys import api_client, static_auth

NOW = 1_800_000_000_000
T0 = 1_700_000_000_000
TOPICS = Topics.from_prefix("u")


class FakePublisher:
    """Records what it was given; fails the records whose event id is in ``fail`` (always)
    or in ``fail_once`` (the first time)."""

    def __init__(self, fail: frozenset[str] = frozenset()) -> None:
        self.sent: list[OutRecord] = []
        self.fail = fail
        self.fail_once: set[str] = set()
        self.is_ready = True

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        outcomes: list[str | None] = []
        for record in records:
            event_id = Event.from_json(record.value).id
            if event_id in self.fail or event_id in self.fail_once:
                self.fail_once.discard(event_id)
                outcomes.append("KafkaTimeoutError")
            else:
                self.sent.append(record)
                outcomes.append(None)
        return outcomes

    async def ready(self) -> bool:
        return self.is_ready


class Harness:
    def __init__(
        self, client: httpx.AsyncClient, publisher: FakePublisher, registry: CollectorRegistry
    ) -> None:
        self.client = client
        self.publisher = publisher
        self.registry = registry

    def metric(self, name: str, **labels: str) -> float:
        value = self.registry.get_sample_value(name, labels)
        return 0.0 if value is None else value


@pytest.fixture
def publisher() -> FakePublisher:
    return FakePublisher()


@pytest.fixture
async def api(publisher: FakePublisher) -> AsyncIterator[Harness]:
    registry = CollectorRegistry()
    deps = IngestDeps(
        publisher=publisher,
        topics=TOPICS,
        metrics=IngestMetrics(registry),
        clock=lambda: NOW,
        max_body_bytes=2048,
        max_batch_items=5,
        new_id=lambda: "generated",
        retry_backoff_s=0,
    )
    app = create_app(deps, registry, {"broker": publisher.ready}, auth=static_auth())
    async with api_client(app, "http://ingest") as client:
        yield Harness(client, publisher, registry)


def ev(i: int, **extra: object) -> dict[str, object]:
    return {"id": f"e{i}", "service": "checkout", "type": "request", "time": T0 + i} | extra


async def post(
    api: Harness, body: bytes, content_type: str = "application/json", **headers: str
) -> httpx.Response:
    return await api.client.post(
        "/v1/events", content=body, headers={"content-type": content_type, **headers}
    )


async def test_mixed_batch_gets_per_item_results(api: Harness) -> None:
    body = orjson.dumps([ev(0), ev(1, service="Bad Slug"), {"service": "checkout", "type": "t"}])
    response = await post(api, body)
    assert response.status_code == 202
    assert response.headers["content-type"] == "application/json"
    assert response.json() == {
        "accepted": 2,
        "rejected": 1,
        "failed": 0,
        "results": [
            {"index": 0, "status": "accepted", "id": "e0"},
            {
                "index": 1,
                "status": "rejected",
                "errors": [
                    {
                        "field": "service",
                        "message": "String should match pattern '^[a-z0-9][a-z0-9._-]{0,62}$'",
                    }
                ],
            },
            {"index": 2, "status": "accepted", "id": "generated"},
        ],
    }
    sent = [Event.from_json(r.value) for r in api.publisher.sent]
    assert [(e.id, e.time, e.received_at) for e in sent] == [
        ("e0", T0, NOW),
        ("generated", NOW, NOW),
    ]
    assert {(r.topic, r.key) for r in api.publisher.sent} == {("u.events", b"checkout")}
    assert api.metric("slawatch_events_ingested_total", path="http") == 2
    assert api.metric("slawatch_events_rejected_total", path="http", reason="invalid_event") == 1
    assert api.metric("slawatch_ingest_batch_size_count", path="http") == 1


async def test_ndjson_indexes_are_line_numbers(api: Harness) -> None:
    body = orjson.dumps(ev(0)) + b"\n\n{broken\n" + orjson.dumps(ev(3)) + b"\n"
    response = await post(api, body, "application/x-ndjson")
    assert response.status_code == 202
    results = response.json()["results"]
    assert [(r["index"], r["status"]) for r in results] == [
        (0, "accepted"),
        (2, "rejected"),
        (3, "accepted"),
    ]


async def test_all_invalid_is_422_problem(api: Harness) -> None:
    body = orjson.dumps([ev(0, time="soon"), 7])
    response = await post(api, body)
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == "urn:slawatch:problem:invalid-events"
    assert problem["status"] == 422
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [(0, "time"), (1, None)]
    assert api.publisher.sent == []
    assert api.metric("slawatch_ingest_requests_rejected_total", reason="invalid_events") == 1


@pytest.mark.parametrize(
    ("body", "content_type", "status", "type_slug"),
    [
        (b"{", "application/json", 400, "invalid-body"),
        (b"[]", "application/json", 400, "empty-body"),
        (b"{}", "text/plain", 415, "unsupported-media-type"),
        (orjson.dumps([ev(i) for i in range(6)]), "application/json", 413, "too-many-items"),
        (b"[" + b" " * 3000 + b"]", "application/json", 413, "body-too-large"),
    ],
)
async def test_whole_request_problems(
    api: Harness, body: bytes, content_type: str, status: int, type_slug: str
) -> None:
    response = await post(api, body, content_type)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["type"] == f"urn:slawatch:problem:{type_slug}"
    assert problem["status"] == status
    assert set(problem) == {"type", "title", "status", "detail", "errors"}
    assert api.publisher.sent == []


async def test_gzip_body_is_decoded(api: Harness) -> None:
    body = gzip.compress(orjson.dumps([ev(0), ev(1)]))
    response = await post(api, body, "application/json", **{"content-encoding": "gzip"})
    assert response.status_code == 202, response.text
    assert response.json()["accepted"] == 2


async def test_gzip_bomb_is_413_without_inflating_it(api: Harness) -> None:
    bomb = gzip.compress(b"[" + b" " * 50_000_000 + b"]")  # ~50 KB → 50 MB
    assert len(bomb) > 2048  # past the test limit even compressed: send a smaller bomb too
    small_bomb = gzip.compress(b" " * 1_000_000)
    assert len(small_bomb) < 2048
    response = await post(api, small_bomb, "application/json", **{"content-encoding": "gzip"})
    assert response.status_code == 413
    assert response.json()["type"] == "urn:slawatch:problem:body-too-large"


async def test_broken_gzip_is_400(api: Harness) -> None:
    response = await post(api, b"not gzip", "application/json", **{"content-encoding": "gzip"})
    assert response.status_code == 400
    assert "gzip" in response.json()["detail"]


async def test_other_codings_are_415(api: Harness) -> None:
    response = await post(api, b"{}", "application/json", **{"content-encoding": "br"})
    assert response.status_code == 415


async def test_streamed_body_is_cut_at_the_limit(api: Harness) -> None:
    pulled: list[int] = []

    async def stream() -> AsyncIterator[bytes]:
        for _ in range(100):
            pulled.append(1)
            yield b" " * 1000

    response = await api.client.post(
        "/v1/events", content=stream(), headers={"content-type": "application/json"}
    )
    assert response.status_code == 413
    assert "content-length" not in response.request.headers
    assert len(pulled) < 100


async def test_unacknowledged_items_are_failed_not_lost(api: Harness) -> None:
    api.publisher.fail = frozenset({"e1"})
    response = await post(api, orjson.dumps([ev(0), ev(1)]))
    assert response.status_code == 202
    body = response.json()
    assert (body["accepted"], body["failed"]) == (1, 1)
    assert body["results"][1]["status"] == "failed"
    assert body["results"][1]["id"] == "e1"
    assert api.metric("slawatch_events_rejected_total", path="http", reason="publish_failed") == 1


async def test_a_transient_failure_is_retried(api: Harness) -> None:
    api.publisher.fail_once = {"e1"}
    response = await post(api, orjson.dumps([ev(0), ev(1)]))
    assert response.status_code == 202
    assert response.json()["accepted"] == 2
    assert sorted(Event.from_json(r.value).id for r in api.publisher.sent) == ["e0", "e1"]


async def test_nothing_acknowledged_is_503(api: Harness) -> None:
    api.publisher.fail = frozenset({"e0"})
    response = await post(api, orjson.dumps(ev(0)))
    assert response.status_code == 503
    assert response.headers["retry-after"] == "1"
    assert response.json()["type"] == "urn:slawatch:problem:unavailable"


async def test_ops_endpoints(api: Harness) -> None:
    assert (await api.client.get("/healthz")).status_code == 200
    assert (await api.client.get("/readyz")).json() == {
        "ready": True,
        "checks": {"broker": {"ok": True}, "intake": {"ok": True}},
    }
    api.publisher.is_ready = False
    assert (await api.client.get("/readyz")).status_code == 503
    metrics = (await api.client.get("/metrics")).text
    assert 'slawatch_events_rejected_total{path="raw",reason="invalid_json"} 0.0' in metrics


async def test_openapi_documents_the_contract(api: Harness) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    operation = spec["paths"]["/v1/events"]["post"]
    content = operation["requestBody"]["content"]
    assert {"application/json", "application/x-ndjson", "application/jsonl"} <= set(content)
    assert content["application/json"]["examples"]["batch"]["value"][0]["service"] == "checkout"
    assert {"202", "400", "413", "415", "422", "503"} <= set(operation["responses"])
    assert "application/problem+json" in operation["responses"]["422"]["content"]
    assert "max_body_bytes" in spec["info"]["description"]
    assert (await api.client.get("/docs")).status_code == 200
