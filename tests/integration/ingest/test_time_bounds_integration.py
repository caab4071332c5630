"""Event times in the wrong unit or too far ahead, through the running ingest on the
real broker: HTTP answers 422 naming ``time`` with the unit hint, a raw-topic record
in seconds is dead-lettered as ``time_unit``, and a Source (explicit unit, no hint)
dead-letters a record past the configured ``max_future_skew_ms`` as ``future``."""

from __future__ import annotations

import orjson
import pytest

from shared.deadletter import DeadLetter
from shared.definitions.kinds.source import SourceSpec
from shared.embedded import free_port
from shared.schemas import Event
from shared.settings import Settings
from tests.integration.ingest.conftest import NOW, read_topic, running_ingest
from tests.integration.ingest.test_sources_integration import create_topic, produce

pytestmark = pytest.mark.integration

SKEW_MS = 60_000  # not the default (5 min): shows the configured bound is the one applied
SECONDS = NOW // 1000 - 3600  # an hour ago, in epoch seconds
HINT = (
    f"{SECONDS} looks like epoch seconds (2027-01-15T07:00:00Z); "
    f"send milliseconds: {SECONDS * 1000}"
)


@pytest.fixture
def bound_settings(make_settings) -> Settings:  # type: ignore[no-untyped-def]
    built: Settings = make_settings(
        ingest_port=free_port(),
        kafka_session_timeout_ms=3_000,
        kafka_heartbeat_interval_ms=300,
        shutdown_grace_s=3.0,
        max_future_skew_ms=SKEW_MS,
    )
    return built


def event(i: int, time: object) -> dict[str, object]:
    return {"id": f"e{i}", "service": "checkout", "type": "request", "time": time}


async def test_units_and_future_bound_on_every_path(bound_settings: Settings) -> None:
    topic = f"{bound_settings.topic_prefix}.shop.orders"
    await create_topic(bound_settings, topic, partitions=1)
    spec = SourceSpec.model_validate(
        {
            "topics": [topic],
            "mapping": {
                "id": "$.id",
                "service": "$.app",
                "type": "order",
                "time": {"path": "$.ts", "format": "epoch_s"},
            },
        }
    )
    orders = [
        {"id": "o-now", "app": "shop", "ts": NOW // 1000},
        {"id": "o-ahead", "app": "shop", "ts": NOW // 1000 + 120},  # 2 min > 60 s bound
    ]
    await produce(bound_settings, topic, [orjson.dumps(o) for o in orders], b"k")

    async with running_ingest(bound_settings, sources={"shop": spec}) as ingest:
        # HTTP: all in seconds → 422 naming time with the hint
        response = await ingest.client.post("/v1/events", json=[event(0, SECONDS)])
        assert response.status_code == 422, response.text
        assert response.json()["errors"] == [{"index": 0, "field": "time", "message": HINT}]
        # HTTP: one good, one in seconds → 202, the second rejected with the hint
        response = await ingest.client.post(
            "/v1/events", json=[event(1, NOW - 1000), event(2, SECONDS)]
        )
        assert response.status_code == 202, response.text
        body = response.json()
        assert (body["accepted"], body["rejected"]) == (1, 1)
        assert body["results"][1] == {
            "index": 1,
            "status": "rejected",
            "errors": [{"field": "time", "message": HINT}],
        }
        # HTTP: milliseconds 61 s ahead → future (the configured bound, not 5 min)
        response = await ingest.client.post("/v1/events", json=[event(3, NOW + 61_000)])
        assert response.status_code == 422, response.text
        assert response.json()["errors"][0]["message"].startswith("time is 61000 ms ahead")
        assert ingest.metric("slawatch_events_rejected_total", path="http", reason="time_unit") == 2
        assert ingest.metric("slawatch_events_rejected_total", path="http", reason="future") == 1

        # raw topic: a seconds time → dead letter time_unit with the hint
        raw = orjson.dumps(event(4, SECONDS))
        await produce(bound_settings, ingest.topics.raw, [raw], b"checkout")

        letters = [
            DeadLetter.from_json(v)
            for _, v in await read_topic(bound_settings, ingest.topics.deadletter, 2)
        ]
        events = [
            Event.from_json(v) for _, v in await read_topic(bound_settings, ingest.topics.events, 2)
        ]
        assert ingest.metric("slawatch_events_rejected_total", path="raw", reason="time_unit") == 1
        assert ingest.metric("slawatch_source_rejected_total", source="shop", reason="future") == 1

    by_origin = {d.rejected_by: d for d in letters}
    assert set(by_origin) == {"ingest.raw", "ingest.source"}
    raw_letter = by_origin["ingest.raw"]
    assert (raw_letter.reason, raw_letter.original) == ("time_unit", raw)
    assert raw_letter.detail is not None and HINT in raw_letter.detail
    source_letter = by_origin["ingest.source"]
    assert (source_letter.reason, source_letter.offset) == ("future", 1)
    assert source_letter.detail is not None and "120000 ms ahead" in source_letter.detail
    # the Source's seconds are its declared unit: mapped, not hinted at
    assert sorted((e.id, e.time) for e in events) == [("e1", NOW - 1000), ("o-now", NOW)]
