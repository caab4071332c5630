"""The configuration REST API on real PostgreSQL, through a real ASGI transport."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.config import config_router, resource_name
from shared import db
from shared.definitions.model import KINDS
from tests.keys import ADMIN_NAME, api_client, guarded_app

pytestmark = pytest.mark.integration

PROBLEM = "application/problem+json"


def receiver(name: str = "hook", url: str = "http://127.0.0.1:1/a") -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Receiver",
        "metadata": {"name": name, "labels": {"team": "payments"}},
        "spec": {"type": "webhook", "url": url},
    }


def agreement(target: float = 0.99, receiver: str = "hook") -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Agreement",
        "metadata": {"name": "shop"},
        "spec": {
            "type": "SLA",
            "objectives": [
                {
                    "name": "availability",
                    "kind": "ratio",
                    "service": "checkout",
                    "good": {"outcome": "good"},
                    "target": target,
                    "window": "1h",
                }
            ],
            "notify": [{"receivers": [receiver]}],
        },
    }


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    app = guarded_app(config_router(db.sessions(engine)))
    async with api_client(app, "http://config") as http:
        yield http


def test_every_registered_kind_has_a_resource() -> None:
    names = {resource_name(k) for k in KINDS}
    assert {"agreements", "receivers", "services", "parties"} <= names
    assert resource_name("MaintenanceWindow") == "maintenance-windows"
    assert len(names) == len(KINDS)


async def test_create_get_replace_delete(client: httpx.AsyncClient) -> None:
    created = await client.post(
        "/v1/receivers", json=receiver(), headers={"x-slawatch-author": "ana"}
    )
    assert created.status_code == 201, created.text
    assert created.headers["etag"] == '"1"'
    assert created.headers["location"] == "/v1/receivers/hook"
    again = await client.post("/v1/receivers", json=receiver())
    assert again.status_code == 409
    assert again.headers["content-type"] == PROBLEM

    got = await client.get("/v1/receivers/hook")
    assert got.json()["spec"]["url"] == "http://127.0.0.1:1/a"
    etag = got.headers["etag"]
    replaced = await client.put(
        "/v1/receivers/hook",
        json=receiver(url="http://127.0.0.1:1/b"),
        headers={"if-match": etag, "x-slawatch-reason": "new endpoint"},
    )
    assert (replaced.status_code, replaced.json()["change"]) == (200, "changed")
    assert replaced.headers["etag"] == '"2"'

    deleted = await client.delete("/v1/receivers/hook", headers={"if-match": '"2"'})
    assert deleted.status_code == 204
    assert (await client.get("/v1/receivers/hook")).status_code == 404


async def test_yaml_body(client: httpx.AsyncClient) -> None:
    response = await client.put(
        "/v1/receivers/hook",
        content=yaml.safe_dump(receiver()),
        headers={"content-type": "application/yaml"},
    )
    assert response.status_code == 201


async def test_concurrent_edit_is_rejected_with_412(client: httpx.AsyncClient) -> None:
    await client.post("/v1/receivers", json=receiver())
    seen = (await client.get("/v1/receivers/hook")).headers["etag"]  # both editors read
    first = await client.put(
        "/v1/receivers/hook",
        json=receiver(url="http://127.0.0.1:1/ana"),
        headers={"if-match": seen},
    )
    assert first.status_code == 200
    second = await client.put(
        "/v1/receivers/hook", json=receiver(url="http://127.0.0.1:1/bo"), headers={"if-match": seen}
    )
    assert second.status_code == 412
    assert second.headers["content-type"] == PROBLEM
    assert second.headers["etag"] == '"2"'
    assert "someone else changed it" in second.json()["detail"]
    stale_delete = await client.delete("/v1/receivers/hook", headers={"if-match": seen})
    assert stale_delete.status_code == 412
    assert (await client.get("/v1/receivers/hook")).json()["spec"]["url"].endswith("/ana")
    create_only = await client.put(
        "/v1/receivers/hook", json=receiver(), headers={"if-none-match": "*"}
    )
    assert create_only.status_code == 409


async def test_invalid_document_is_a_problem_naming_the_field(client: httpx.AsyncClient) -> None:
    await client.post("/v1/receivers", json=receiver())
    bad = agreement(target=1.5)
    bad["spec"]["objectives"][0]["windw"] = "1h"
    response = await client.post("/v1/agreements", json=bad)
    assert response.status_code == 422
    assert response.headers["content-type"] == PROBLEM
    body = response.json()
    assert body["type"] == "urn:slawatch:problem:invalid-definition"
    fields = {e["field"]: e["message"] for e in body["errors"]}
    assert "target 1.5 is impossible" in fields["spec.objectives[0].target"]
    assert "did you mean 'window'?" in fields["spec.objectives[0].windw"]

    dangling = await client.post("/v1/agreements", json=agreement(receiver="hooky"))
    assert dangling.status_code == 422
    assert dangling.json()["errors"] == [
        {
            "index": 0,
            "field": "spec.notify[0].receivers[0]",
            "message": "no Receiver named 'hooky'; did you mean 'hook'?",
            "kind": "Agreement",
            "name": "shop",
        }
    ]
    wrong_name = await client.put("/v1/receivers/other", json=receiver())
    assert wrong_name.status_code == 422
    assert wrong_name.json()["errors"][0]["field"] == "metadata.name"
    not_json = await client.post(
        "/v1/receivers", content=b"{", headers={"content-type": "application/json"}
    )
    assert not_json.status_code == 400
    wrong_type = await client.post(
        "/v1/receivers", content=b"x", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415


async def test_validate_endpoints_store_nothing(client: httpx.AsyncClient) -> None:
    ok = await client.post("/v1/receivers/validate", json=receiver())
    assert ok.json() == {"valid": True, "kind": "Receiver", "name": "hook"}
    assert (await client.get("/v1/receivers/hook")).status_code == 404
    text = yaml.safe_dump_all([agreement(), receiver()])
    whole = await client.post("/v1/definitions/validate", content=text)
    assert whole.json() == {"valid": True, "documents": 2}
    broken = await client.post("/v1/definitions/validate", content=yaml.safe_dump(agreement()))
    assert broken.status_code == 422
    assert broken.json()["errors"][0]["field"] == "spec.notify[0].receivers[0]"


async def test_validate_lists_every_problem_of_a_body_at_once(client: httpx.AsyncClient) -> None:
    """A field error, a field that does not apply and a dangling reference of one
    invalid document, and another document's error: one answer, each naming its
    document (index, kind, name) and field."""
    bad = agreement(target=1.5, receiver="hooky")
    bad["spec"]["objectives"][0]["alerting"] = {"policy": "burn-rate", "for": "5m"}
    text = yaml.safe_dump_all([bad, {**receiver(), "spec": {"type": "slak", "url": "x"}}])
    response = await client.post("/v1/definitions/validate", content=text)
    assert response.status_code == 422
    found = [(e["index"], e["kind"], e["name"], e["field"]) for e in response.json()["errors"]]
    assert found == [
        (0, "Agreement", "shop", "spec.objectives[0].target"),
        (0, "Agreement", "shop", "spec.objectives[0].alerting.for"),
        (0, "Agreement", "shop", "spec.objectives[0].window"),  # 1h < the default 3d rule
        (0, "Agreement", "shop", "spec.notify[0].receivers[0]"),
        (1, "Receiver", "hook", "spec.type"),
    ]


async def test_receiver_with_an_inline_secret_is_refused_and_nothing_stored(
    client: httpx.AsyncClient,
) -> None:
    secret = "xoxb-s3cr3t"
    slack = receiver()
    slack["spec"] = {"type": "slack", "url": f"https://hooks.slack.com/services/T0/B0/{secret}"}
    header = receiver()
    header["spec"]["headers"] = {"Authorization": f"Bearer {secret}"}
    for method, path, body in [
        ("POST", "/v1/receivers", slack),
        ("PUT", "/v1/receivers/hook", slack),
        ("POST", "/v1/receivers/validate", slack),
        ("POST", "/v1/receivers", header),
    ]:
        response = await client.request(method, path, json=body)
        assert response.status_code == 422, (method, path, response.text)
        assert response.headers["content-type"] == PROBLEM
        problem = response.json()
        assert problem["type"] == "urn:slawatch:problem:invalid-definition"
        (error,) = problem["errors"]
        if body is slack:
            assert error["field"] == "spec.url"
            assert "Slack webhook's credential" in error["message"]
            assert "url: env:SLAWATCH_SECRET_HOOK_URL" in error["message"]
        else:
            assert error["field"] == "spec.headers.Authorization"
            assert "move header Authorization to secretHeaders" in error["message"]
        assert secret not in response.text
    whole = await client.post("/v1/definitions/validate", content=yaml.safe_dump(header))
    assert whole.status_code == 422
    assert whole.json()["errors"][0]["field"] == "spec.headers.Authorization"
    assert (await client.get("/v1/receivers/hook")).status_code == 404
    assert (await client.get("/v1/receivers/hook/versions")).status_code == 404
    assert (await client.get("/v1/receivers")).json()["items"] == []


async def test_delete_refused_while_referenced(client: httpx.AsyncClient) -> None:
    await client.post("/v1/receivers", json=receiver())
    await client.post("/v1/agreements", json=agreement())
    refused = await client.delete("/v1/receivers/hook")
    assert refused.status_code == 409
    assert "Agreement/shop" in refused.json()["detail"]


async def test_list_pages_and_filters(client: httpx.AsyncClient) -> None:
    for i in range(5):
        await client.post("/v1/receivers", json=receiver(f"r{i}"))
    first = (await client.get("/v1/receivers", params={"limit": 2})).json()
    assert [d["metadata"]["name"] for d in first["items"]] == ["r0", "r1"]
    second = (await client.get("/v1/receivers", params={"limit": 2, "after": first["next"]})).json()
    third = (await client.get("/v1/receivers", params={"limit": 2, "after": second["next"]})).json()
    assert [d["metadata"]["name"] for d in second["items"] + third["items"]] == ["r2", "r3", "r4"]
    assert third["next"] is None
    labelled = await client.get("/v1/receivers", params={"label": "team=payments", "prefix": "r4"})
    assert [d["metadata"]["name"] for d in labelled.json()["items"]] == ["r4"]
    by_field = await client.get("/v1/receivers", params={"type": "slack"})
    assert by_field.json()["items"] == []


async def test_versions(client: httpx.AsyncClient) -> None:
    await client.post("/v1/receivers", json=receiver(), headers={"x-slawatch-author": "ana"})
    await client.put(
        "/v1/receivers/hook",
        json=receiver(url="http://127.0.0.1:1/b"),
        params={"reason": "moved"},
        headers={"x-slawatch-author": "bo"},
    )
    listed = (await client.get("/v1/receivers/hook/versions")).json()["items"]
    # the actor is the API key; the header names the person it acted for
    assert [(v["version"], v["change"], v["author"], v["reason"]) for v in listed] == [
        (1, "created", f"{ADMIN_NAME} (ana)", None),
        (2, "changed", f"{ADMIN_NAME} (bo)", "moved"),
    ]
    await client.delete("/v1/receivers/hook")
    deleted = (await client.get("/v1/receivers/hook/versions")).json()["items"][-1]
    assert (deleted["change"], deleted["author"]) == ("deleted", ADMIN_NAME)
    old = (await client.get("/v1/receivers/hook/versions/1")).json()
    assert old["document"]["spec"]["url"] == "http://127.0.0.1:1/a"
    assert (await client.get("/v1/receivers/hook/versions/9")).status_code == 404


async def test_schema(client: httpx.AsyncClient) -> None:
    every = (await client.get("/v1/schema")).json()
    assert set(every["properties"]["kind"]["enum"]) == set(KINDS)
    party = (await client.get("/v1/schema/Party")).json()
    assert "spec" in party["properties"]
    assert (await client.get("/v1/schema/Nope")).status_code == 404


async def test_simultaneous_edits_from_one_version_one_wins(client: httpx.AsyncClient) -> None:
    await client.post("/v1/receivers", json=receiver())
    edits = [
        client.put(
            "/v1/receivers/hook",
            json=receiver(url=f"http://127.0.0.1:1/{who}"),
            headers={"if-match": '"1"'},
        )
        for who in ("ana", "bo", "cy")
    ]
    statuses = sorted(r.status_code for r in await asyncio.gather(*edits))
    assert statuses == [200, 412, 412]
    versions = (await client.get("/v1/receivers/hook/versions")).json()["items"]
    assert [v["version"] for v in versions] == [1, 2]
