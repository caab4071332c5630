"""Graceful stop of the HTTP intake: new requests get 503 + Retry-After, admitted ones
finish with their acknowledgements (a fake publisher held open by the test)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import orjson
from prometheus_client import CollectorRegistry

from services.ingest.api import SHUTDOWN_RETRY_AFTER_S, IngestDeps, create_app
from services.ingest.backpressure import Drain
from services.ingest.metrics import IngestMetrics
from services.ingest.problems import PROBLEM_MEDIA_TYPE
from services.ingest.records import OutRecord
from tests.keys import api_client, static_auth
from tests.unit.ingest.test_api import NOW, TOPICS, FakePublisher


class HeldPublisher(FakePublisher):
    """Acknowledges only once ``release`` is set, so a request stays in flight."""

    def __init__(self) -> None:
        super().__init__()
        self.entered = asyncio.Event()
        self.release = asyncio.Event()

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        self.entered.set()
        await self.release.wait()
        return await super().send_all(records)


def event(i: int) -> bytes:
    return orjson.dumps({"id": f"e{i}", "service": "checkout", "type": "request", "time": NOW})


async def test_draining_refuses_new_requests_and_finishes_admitted_ones() -> None:
    publisher, drain, registry = HeldPublisher(), Drain(), CollectorRegistry()
    deps = IngestDeps(
        publisher=publisher,
        topics=TOPICS,
        metrics=IngestMetrics(registry),
        clock=lambda: NOW,
        max_body_bytes=2048,
        max_batch_items=5,
        drain=drain,
    )
    app = create_app(deps, registry, {"broker": publisher.ready}, auth=static_auth())
    headers = {"content-type": "application/json"}
    async with api_client(app, "http://ingest") as client:
        admitted = asyncio.create_task(client.post("/v1/events", content=event(0), headers=headers))
        await asyncio.wait_for(publisher.entered.wait(), 10)
        drain.start()

        refused = await client.post("/v1/events", content=event(1), headers=headers)
        assert refused.status_code == 503
        assert refused.headers["retry-after"] == str(SHUTDOWN_RETRY_AFTER_S)
        assert refused.headers["content-type"] == PROBLEM_MEDIA_TYPE
        assert refused.json()["type"] == "urn:slawatch:problem:shutting-down"
        assert (await client.get("/readyz")).status_code == 503
        assert drain.active == 1

        publisher.release.set()
        assert (await asyncio.wait_for(admitted, 10)).status_code == 202
        await asyncio.wait_for(drain.idle(), 10)
    assert [r.key for r in publisher.sent] == [b"checkout"]
    rejected = registry.get_sample_value(
        "slawatch_ingest_requests_rejected_total", {"reason": "shutting_down"}
    )
    assert rejected == 1
