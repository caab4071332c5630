"""The notifier's HTTP API over the real PostgreSQL, through httpx's ASGI transport."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier import outbox
from services.notifier.api import create_app
from services.notifier.intake import record_breach
from shared import db
from tests.keys import api_client, static_auth
from tests.unit.notifier.support import T0, make_breach

pytestmark = pytest.mark.integration


async def always() -> bool:
    return True


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        db.sessions(engine), CollectorRegistry(), {"database": always}, auth=static_auth()
    )
    async with api_client(app, "http://notifier") as http:
        yield http


async def seed(engine: AsyncEngine) -> None:
    breaches = [
        make_breach(id=f"{i:032d}", opened_at=T0 + i, at=T0 + i, service=service)
        for i, service in enumerate(["checkout", "checkout", "search", "checkout", "search"])
    ]
    breaches.append(
        make_breach(id=f"{3:032d}", opened_at=T0 + 3, kind="breach.resolved", at=T0 + 9)
    )
    async with db.sessions(engine)() as session, session.begin():
        for breach in breaches:
            await record_breach(session, breach, ["hook"], T0)
        [claimed, *_] = await outbox.claim(session, T0, lease_ms=1_000, limit=1)
        await outbox.finish(
            session,
            claimed,
            outbox.Decision("retry", 100),
            now_ms=T0 + 5,
            status_code=503,
            latency_ms=12,
            error="http_5xx: HTTP 503 from hook",
        )


async def test_list_newest_first_with_filters_and_cursor(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    await seed(engine)
    page = (await client.get("/v1/breaches")).json()
    assert [b["id"][-1] for b in page["items"]] == ["4", "3", "2", "1", "0"]
    assert page["next_cursor"] is None

    first = (await client.get("/v1/breaches", params={"limit": 2})).json()
    second = (
        await client.get("/v1/breaches", params={"limit": 2, "cursor": first["next_cursor"]})
    ).json()
    third = (
        await client.get("/v1/breaches", params={"limit": 2, "cursor": second["next_cursor"]})
    ).json()
    ids = [b["id"][-1] for p in (first, second, third) for b in p["items"]]
    assert ids == ["4", "3", "2", "1", "0"]
    assert third["next_cursor"] is None

    search = (await client.get("/v1/breaches", params={"service": "search"})).json()
    assert [b["id"][-1] for b in search["items"]] == ["4", "2"]
    resolved = (await client.get("/v1/breaches", params={"status": "resolved"})).json()
    assert [(b["id"][-1], b["resolved_at"]) for b in resolved["items"]] == [("3", T0 + 9)]
    other = (await client.get("/v1/breaches", params={"agreement": "other"})).json()
    assert other["items"] == []


async def test_detail_has_events_deliveries_and_attempts(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    await seed(engine)
    response = await client.get(f"/v1/breaches/{0:032d}")
    assert response.status_code == 200
    body = response.json()
    assert body["breach"]["status"] == "open"
    assert body["breach"]["group"] == {"customer": "acme"}
    assert [e["kind"] for e in body["events"]] == ["breach.opened"]
    [delivery] = body["deliveries"]
    assert (delivery["receiver"], delivery["status"], delivery["attempts"]) == (
        "hook",
        "pending",
        1,
    )
    assert delivery["next_attempt_at"] == T0 + 105
    [attempt] = delivery["attempts_log"]
    assert attempt == {
        "attempt": 1,
        "outcome": "retry",
        "status_code": 503,
        "latency_ms": 12,
        "error": "http_5xx: HTTP 503 from hook",
        "attempted_at": T0 + 5,
        "attempted_at_rfc3339": "2023-11-14T22:13:20.005Z",
    }
    assert delivery["next_attempt_at_rfc3339"] == "2023-11-14T22:13:20.105Z"
    assert body["breach"]["opened_at_rfc3339"].endswith("Z")
    lifecycle = (await client.get(f"/v1/breaches/{3:032d}")).json()
    assert [e["kind"] for e in lifecycle["events"]] == ["breach.opened", "breach.resolved"]


async def test_errors_are_problem_json(client: httpx.AsyncClient) -> None:
    missing = await client.get("/v1/breaches/nope")
    assert missing.status_code == 404
    assert missing.headers["content-type"] == "application/problem+json"
    assert missing.json()["detail"] == "no breach with id 'nope'"

    bad_limit = await client.get("/v1/breaches", params={"limit": 0})
    assert bad_limit.status_code == 422
    assert bad_limit.headers["content-type"] == "application/problem+json"
    assert bad_limit.json()["errors"][0]["field"] == "query.limit"

    bad_cursor = await client.get("/v1/breaches", params={"cursor": "!!"})
    assert bad_cursor.status_code == 400
    assert bad_cursor.headers["content-type"] == "application/problem+json"

    no_route = await client.get("/v2/nothing")
    assert no_route.status_code == 404
    assert no_route.headers["content-type"] == "application/problem+json"


async def test_ops_endpoints(client: httpx.AsyncClient) -> None:
    assert (await client.get("/healthz")).json() == {"status": "ok"}
    assert (await client.get("/readyz")).json() == {
        "ready": True,
        "checks": {"database": {"ok": True}},
    }
    assert (await client.get("/metrics")).status_code == 200
