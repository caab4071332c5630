"""The whole notifier pushing into the real Alertmanager: a breach published on the
topic shows up in Alertmanager's /api/v2/alerts, and its resolution ends it there."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.main import run
from shared.settings import Settings
from shared.timeutil import wall_clock_ms
from tests.integration.notifier.support import agreement_doc, apply_docs, eventually
from tests.integration.notifier.test_service import publish
from tests.unit.notifier.support import make_breach, unused_port
from tests.unit.notifier.test_alertmanager import BINARY, alertmanager  # noqa: F401 (fixture)

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(BINARY is None, reason="prometheus-alertmanager not installed"),
]


async def test_breach_lifecycle_reaches_alertmanager(
    settings: Settings,
    make_settings: Any,
    engine: AsyncEngine,
    alertmanager: str,  # noqa: F811
) -> None:
    settings = make_settings(notifier_port=unused_port(), shutdown_grace_s=3.0)
    now = wall_clock_ms()
    opened = make_breach(at=now, opened_at=now, detected_at=now)
    resolved = opened.model_copy(
        update={"kind": "breach.resolved", "at": now + 1, "resolved_at": now + 1}
    )
    await apply_docs(
        engine,
        {
            "apiVersion": "slawatch/v1",
            "kind": "Receiver",
            "metadata": {"name": "am"},
            "spec": {"type": "alertmanager", "url": alertmanager},
        },
        agreement_doc([{"receivers": ["am"]}]),
    )
    stop = asyncio.Event()
    service = asyncio.create_task(run(settings, stop))
    try:
        async with httpx.AsyncClient(base_url=alertmanager) as am:

            async def alerts(active: bool) -> list[dict[str, Any]]:
                answer = await am.get("/api/v2/alerts", params={"active": str(active).lower()})
                found: list[dict[str, Any]] = answer.json()
                return found

            await publish(settings, opened.to_json())
            [alert] = await eventually(lambda: alerts(True), timeout_s=20)
            assert alert["labels"]["breach_id"] == opened.id
            assert alert["labels"]["customer"] == "acme"
            await publish(settings, resolved.to_json())

            async def gone() -> bool:
                return not await alerts(True)

            await eventually(gone, timeout_s=20)
    finally:
        stop.set()
        await asyncio.wait_for(service, 10)
