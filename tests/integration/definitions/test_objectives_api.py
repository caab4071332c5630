"""``GET /v1/objectives`` on real PostgreSQL: every objective of the stored agreements,
in its own unit, filtered and paged."""

from __future__ import annotations

from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.definitions.test_api import client  # noqa: F401 - fixture
from tests.integration.notifier.support import apply_docs
from tests.unit.evaluator.factories import agreement_doc

pytestmark = pytest.mark.integration


def two_objective_doc(name: str, service: str) -> dict[str, Any]:
    doc = agreement_doc(name, service=service, groupBy=["customer"], target=0.999, window="30d")
    doc["spec"]["objectives"].append(
        {
            "name": "latency",
            "kind": "quantile",
            "service": service,
            "quantile": 0.99,
            "threshold": 300,
            "window": "5m",
        }
    )
    return doc


async def test_every_objective_listed_filtered_and_paged(
    engine: AsyncEngine,
    client: httpx.AsyncClient,  # noqa: F811
) -> None:
    api = client
    await apply_docs(engine, two_objective_doc("acme-checkout", "checkout"))
    await apply_docs(engine, two_objective_doc("beta-search", "search"))
    page = (await api.get("/v1/objectives")).json()
    assert [i["objective_id"] for i in page["items"]] == [
        "acme-checkout/availability",
        "acme-checkout/latency",
        "beta-search/availability",
        "beta-search/latency",
    ]
    first = page["items"][0]
    assert first["target"] == "99.9 % good over 30d"
    assert (first["kind"], first["agreement_type"], first["group_by"]) == (
        "ratio",
        "SLA",
        ["customer"],
    )
    assert page["items"][1]["target"] == "p99 <= 300 ms over 5m"
    assert page["next_cursor"] is None

    filtered = {"service": "search", "kind": "quantile"}
    only = (await api.get("/v1/objectives", params=filtered)).json()
    assert [i["objective_id"] for i in only["items"]] == ["beta-search/latency"]
    first_page = (await api.get("/v1/objectives", params={"limit": 3})).json()
    assert first_page["next_cursor"] == "beta-search/availability"
    rest = (
        await api.get("/v1/objectives", params={"limit": 3, "after": first_page["next_cursor"]})
    ).json()
    assert [i["objective_id"] for i in rest["items"]] == ["beta-search/latency"]
    assert (await api.get("/v1/objectives", params={"limit": 0})).status_code == 422
