"""The source lag figure, exact on Apache Kafka: produce N, let the source take M, pause
it, and ``slawatch_source_lag`` (and ``GET /v1/sources``) say N - M; resumed, 0.

Skipped on the embedded broker, whose high watermarks are wrong when a batch holds
several records (EMBEDDED_BROKER.md); the arithmetic is unit-tested against a fake.
"""

from __future__ import annotations

import asyncio

import orjson
import pytest

from shared.definitions.kinds.source import SourceSpec
from shared.embedded import free_port
from shared.settings import Settings
from tests.infra.broker import TestBroker
from tests.integration.ingest.conftest import Ingest, running_ingest
from tests.integration.ingest.test_sources_integration import create_topic, produce

pytestmark = pytest.mark.integration

WAIT_S = 30.0
TAKEN = 7  # M: taken before the pause
TOTAL = 19  # N


def record(i: int) -> bytes:
    return orjson.dumps({"svc": "shop", "ok": True, "n": i})


async def wait_for(ingest: Ingest, name: str, value: float, **labels: str) -> None:
    deadline = asyncio.get_running_loop().time() + WAIT_S
    while (got := ingest.metric(name, **labels)) != value:
        assert asyncio.get_running_loop().time() < deadline, f"{name} {got}, not {value}"
        await asyncio.sleep(0.05)


async def test_paused_source_lag_is_exact(make_settings, broker: TestBroker) -> None:  # type: ignore[no-untyped-def]
    if not broker.exact_offsets:
        pytest.skip(f"the {broker.kind} broker's offsets are not exact (EMBEDDED_BROKER.md)")
    settings: Settings = make_settings(
        ingest_port=free_port(), kafka_session_timeout_ms=6_000, shutdown_grace_s=5.0
    )
    topic = f"{settings.topic_prefix}.lagged"
    await create_topic(settings, topic, partitions=1)
    spec = SourceSpec.model_validate(
        {"topics": [topic], "mapping": {"service": "$.svc", "outcome": "ok == true"}}
    )
    await produce(settings, topic, [record(i) for i in range(TAKEN)], b"k")
    async with running_ingest(settings, sources={"lagged": spec}) as ingest:
        await wait_for(ingest, "slawatch_source_events_total", TAKEN, source="lagged")
        await wait_for(ingest, "slawatch_source_lag", 0, source="lagged")
        assert (await ingest.client.post("/v1/sources/lagged/pause")).status_code == 200

        await produce(settings, topic, [record(i) for i in range(TAKEN, TOTAL)], b"k")
        await wait_for(ingest, "slawatch_source_lag", TOTAL - TAKEN, source="lagged")
        listed = (await ingest.client.get("/v1/sources")).json()["sources"]
        assert [(s["name"], s["paused"], s["lag"]) for s in listed] == [
            ("lagged", True, TOTAL - TAKEN)
        ]
        assert ingest.metric("slawatch_source_events_total", source="lagged") == TAKEN

        assert (await ingest.client.post("/v1/sources/lagged/resume")).status_code == 200
        await wait_for(ingest, "slawatch_source_events_total", TOTAL, source="lagged")
        await wait_for(ingest, "slawatch_source_lag", 0, source="lagged")
