"""What PostgreSQL cannot store is refused by the configuration API before it gets
there (found by schemathesis: a NUL in a label was a 500)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.config import config_router
from shared import db
from tests.keys import api_client, guarded_app

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def service(name: str = "checkout", **labels: str) -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Service",
        "metadata": {"name": name, "labels": labels},
        "spec": {},
    }


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    async with api_client(guarded_app(config_router(db.sessions(engine))), "http://config") as http:
        yield http


@pytest.mark.parametrize(
    ("labels", "field"),
    [({"team": "a\x00b"}, "metadata.labels.team"), ({"t\x00": "x"}, "metadata.labels.'t\\x00'")],
)
@pytest.mark.parametrize("route", ["/v1/services", "/v1/services/validate"])
async def test_a_nul_in_a_document_is_invalid(
    client: httpx.AsyncClient, route: str, labels: dict[str, str], field: str
) -> None:
    response = await client.post(route, json=service(**labels))
    assert response.status_code == 422, response.text
    assert response.headers["content-type"] == PROBLEM
    [error] = response.json()["errors"]
    assert (error["field"], error["message"]) == (field, "NUL characters cannot be stored")
    assert (await client.get("/v1/services")).json()["items"] == []


async def test_a_nul_in_yaml_is_invalid_too(client: httpx.AsyncClient) -> None:
    body = yaml.safe_dump(service(team="a\x00b"))
    response = await client.put(
        "/v1/services/checkout", content=body, headers={"content-type": "application/yaml"}
    )
    assert response.status_code == 422, response.text


@pytest.mark.parametrize(
    "query",
    [{"prefix": "a\x00"}, {"label": "team=\x00"}, {"owner": "\x00"}, {"reason": "\x00"}],
)
async def test_a_nul_in_the_query_is_a_bad_query(
    client: httpx.AsyncClient, query: dict[str, str]
) -> None:
    response = await client.get("/v1/services", params=query)
    assert response.status_code == 400, response.text
    assert response.json()["type"] == "urn:slawatch:problem:invalid-query"
    written = await client.put("/v1/services/checkout", json=service(), params=query)
    assert written.status_code == 400, written.text


@pytest.mark.parametrize("name", ["a%00b", "Not-A-Name", "x" * 64])
@pytest.mark.parametrize("suffix", ["", "/versions", "/versions/1"])
async def test_a_name_no_document_can_have_is_refused(
    client: httpx.AsyncClient, name: str, suffix: str
) -> None:
    response = await client.get(f"/v1/services/{name}{suffix}")
    assert response.status_code == 422, response.text
    assert response.json()["errors"][0]["field"] == "path.name"
    assert (await client.delete(f"/v1/services/{name}")).status_code == 422
    after = await client.get(f"/v1/services?after={name}")
    assert after.status_code == (400 if "%00" in name else 422), after.text


async def test_a_good_document_still_stores(client: httpx.AsyncClient) -> None:
    created = await client.post("/v1/services", json=service(team="shop"))
    assert created.status_code == 201, created.text
    got = await client.get("/v1/services/checkout")
    assert got.json()["metadata"]["labels"] == {"team": "shop"}
