"""``/`` on every service: what it is, its version and where to go, without a key."""

from __future__ import annotations

import httpx
import pytest

from shared.http.app import OPS_LINKS, package_version
from tests.unit.test_route_auth import BUILDERS


@pytest.mark.parametrize("service", sorted(BUILDERS))
async def test_home_says_what_the_service_is(service: str) -> None:
    app = BUILDERS[service]()
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
        answer = await client.get("/")
        assert answer.status_code == 200, answer.text
        about = answer.json()
        assert about["name"] == f"slawatch {service}"
        assert about["summary"]
        assert about["version"] == package_version() != "unknown"
        served = {k: v for k, v in OPS_LINKS.items() if k != "docs" or app.docs_url}
        assert about["links"] == served
        for link in about["links"].values():  # every link answers (metrics open here)
            assert (await client.get(link)).status_code in (200, 503), link
