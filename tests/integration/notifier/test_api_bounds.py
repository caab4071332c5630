"""The notifier's API refuses what PostgreSQL cannot take before it gets there: a NUL
in text, an integer past 64 bits (found by schemathesis: both were 500s). And a
breach cursor is a position, ``<opened_at>:<id>``, which the schema states whole."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.api import MAX_MS, create_app
from services.notifier.intake import record_breach
from shared import db
from tests.keys import api_client, static_auth
from tests.unit.notifier.support import T0, make_breach

pytestmark = pytest.mark.integration

TOO_BIG = 2**63  # one past BIGINT


async def always() -> bool:
    return True


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(
        db.sessions(engine), CollectorRegistry(), {"database": always}, auth=static_auth()
    )
    async with api_client(app, "http://notifier") as http:
        yield http


def silence(**fields: object) -> dict[str, object]:
    return {"created_by": "ana", "duration": "1h", **fields}


@pytest.mark.parametrize(
    "body",
    [
        silence(starts_at=TOO_BIG),
        silence(starts_at=-1),
        silence(ends_at=TOO_BIG, duration=None),
        silence(starts_at=MAX_MS - 1),  # + 1h is past 64 bits
        silence(created_by="a\x00"),
        silence(comment="\x00"),
        silence(match={"service": "\x00"}),
        silence(match={"\x00": "x"}),
    ],
)
async def test_a_silence_postgresql_cannot_store_is_422(
    client: httpx.AsyncClient, body: dict[str, object]
) -> None:
    response = await client.post("/v1/silences", json=body)
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert (await client.get("/v1/silences")).json() == []


async def test_an_ack_with_a_nul_is_422(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    async with db.sessions(engine)() as session, session.begin():
        await record_breach(session, make_breach(id=f"{0:032d}"), [], T0)
    for body in ({"by": "a\x00"}, {"by": "ana", "comment": "\x00"}):
        response = await client.post(f"/v1/breaches/{0:032d}/ack", json=body)
        assert response.status_code == 422, response.text
    acked = await client.post(f"/v1/breaches/{0:032d}/ack", json={"by": "ana"})
    assert (acked.status_code, acked.json()["already"]) == (200, False)


@pytest.mark.parametrize(
    "url",
    [
        "/v1/breaches/a%00b",
        "/v1/breaches?agreement=%00",
        "/v1/breaches?service=%00",
        "/v1/silences/a%00b",
        "/v1/receivers/a%00b/attempts",
        f"/v1/receivers/hook/attempts?cursor={TOO_BIG}",
        "/v1/agreements/a%00b/report",
    ],
)
async def test_a_parameter_postgresql_cannot_take_is_422(
    client: httpx.AsyncClient, url: str
) -> None:
    method = "DELETE" if url.startswith("/v1/silences/") else "GET"
    response = await client.request(method, url)
    assert response.status_code == 422, response.text


@pytest.mark.parametrize("cursor", [f"{TOO_BIG}:x", "1:%00", "not-a-cursor", "0:"])
async def test_a_cursor_that_is_no_position_is_400(client: httpx.AsyncClient, cursor: str) -> None:
    response = await client.get(f"/v1/breaches?cursor={cursor}")
    assert response.status_code == 400, response.text


async def test_any_position_is_a_cursor(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    async with db.sessions(engine)() as session, session.begin():
        for i in range(3):
            breach = make_breach(id=f"{i:032d}", opened_at=T0 + i, at=T0 + i)
            await record_breach(session, breach, [], T0)
    first = (await client.get("/v1/breaches", params={"limit": 2})).json()
    assert first["next_cursor"] == f"{T0 + 1}:{1:032d}"
    rest = (await client.get("/v1/breaches", params={"cursor": first["next_cursor"]})).json()
    assert [b["id"] for b in rest["items"]] == [f"{0:032d}"]
    # a position no breach has: the ones before it
    between = (await client.get("/v1/breaches", params={"cursor": f"{T0 + 1}:zzz"})).json()
    assert [b["id"] for b in between["items"]] == [f"{1:032d}", f"{0:032d}"]
    assert (await client.get("/v1/breaches", params={"cursor": "0:a"})).json()["items"] == []
