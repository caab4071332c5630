# ruff: noqa: E501 - the tables read best one case a line
"""Hostile input: each answer, and the intake still whole afterwards.

A table of bad requests against the ingest app (real parsing, real backpressure, a
recording publisher in place of the broker): every row states the status, the
problem type and the (index, field) the problem names; after every row ``/healthz``
answers, no in-flight slot is left behind, and a normal event is accepted. Bombs
(gzip, YAML aliases, deep nesting) are also held to a memory bound (tracemalloc peak).
The raw topic's garbage is routed by the same code the raw loop runs
(``route_raw``, pure) here and through the real broker in
tests/integration/ingest/test_hostile_raw.py.
"""

from __future__ import annotations

import inspect
import json
import tracemalloc
import zlib
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import yaml
from prometheus_client import CollectorRegistry

from services.ingest.api import IngestDeps, create_app
from services.ingest.metrics import IngestMetrics
from services.ingest.records import OutRecord, RawRecord, route_raw
from shared.deadletter import DeadLetter
from shared.definitions import yamlsafe
from shared.definitions.load import parse_text
from shared.schemas import Event
from shared.topics import Topics

NOW = 1_800_000_000_000
T0 = 1_790_000_000_000
TOPICS = Topics.from_prefix("h")
LIMIT = 64 * 1024
JSON = {"content-type": "application/json"}


class Recorder:
    """The broker's place: takes every record (the records must encode)."""

    def __init__(self) -> None:
        self.sent: list[OutRecord] = []

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        self.sent.extend(records)
        return [None] * len(records)

    async def ready(self) -> bool:
        return True


@dataclass
class Api:
    client: httpx.AsyncClient
    registry: CollectorRegistry
    publisher: Recorder

    def inflight(self) -> float:
        return self.registry.get_sample_value("slawatch_ingest_inflight_events") or 0.0


def _app(deps: IngestDeps, registry: CollectorRegistry) -> tuple[Any, dict[str, str]]:
    """The app and the headers a caller sends; with API keys in place, the admin key."""
    if "auth" in inspect.signature(create_app).parameters:
        from tests.keys import ADMIN_KEY, bearer, static_auth

        return create_app(deps, registry, {}, auth=static_auth()), bearer(ADMIN_KEY)
    return create_app(deps, registry, {}), {}


@pytest.fixture
async def api() -> AsyncIterator[Api]:
    registry = CollectorRegistry()
    publisher = Recorder()
    deps = IngestDeps(
        publisher=publisher,
        topics=TOPICS,
        metrics=IngestMetrics(registry),
        clock=lambda: NOW,
        max_body_bytes=LIMIT,
        max_batch_items=100,
        max_inflight=10,
    )
    app, headers = _app(deps, registry)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(
        transport=transport, base_url="http://ingest", headers=headers
    ) as client:
        yield Api(client, registry, publisher)


def ev(**patch: object) -> dict[str, object]:
    return {"id": "e1", "service": "checkout", "type": "request", "time": T0} | patch


def body(**patch: object) -> bytes:
    # the standard library writes integers of any size, as a hostile client may
    return json.dumps(ev(**patch)).encode()


def _gzip(data: bytes) -> bytes:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    return packer.compress(data) + packer.flush()


def gzip_bomb(expanded: int) -> bytes:
    """``expanded`` zero bytes gzipped (about 1,000 times smaller), built in 1 MiB steps."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    step = b"\0" * (1 << 20)
    parts = [packer.compress(step) for _ in range(expanded >> 20)]
    return b"".join(parts) + packer.flush()


async def _chunks(data: bytes, size: int = 8192) -> AsyncIterator[bytes]:
    for start in range(0, len(data), size):
        yield data[start : start + size]


U = "urn:slawatch:problem:"

# (id, headers, body, status, problem type, (index, field) of the first error or None)
CASES: list[tuple[str, dict[str, str], bytes, int, str, tuple[int | None, str | None] | None]] = [
    ("time-2^64", JSON, body(time=2**64), 422, "invalid-events", (0, "time")),
    ("time-2^63", JSON, body(time=2**63), 422, "invalid-events", (0, "time")),
    ("time-negative", JSON, body(time=-1), 422, "invalid-events", (0, "time")),
    ("time-zero", JSON, body(time=0), 422, "invalid-events", (0, "time")),
    ("time-1999", JSON, body(time="1999-12-31T23:59:59Z"), 422, "invalid-events", (0, "time")),
    ("time-year-9999", JSON, body(time="9999-12-31T00:00:00Z"), 422, "invalid-events", (0, "time")),
    ("time-future", JSON, body(time=NOW + 3_600_000), 422, "invalid-events", (0, "time")),
    ("time-1e300", JSON, body(time=1e300), 422, "invalid-events", (0, "time")),
    ("time-overflow", JSON, b'{"service":"s","type":"t","time":1e400}', 400, "invalid-body", None),
    ("value-NaN", JSON, b'{"service":"s","type":"t","value":NaN}', 400, "invalid-body", None),
    ("value-Infinity", JSON, b'{"service":"s","type":"t","value":Infinity}', 400, "invalid-body", None),
    ("value-nan-text", JSON, body(value="NaN"), 422, "invalid-events", (0, "value")),
    ("value-1e16", JSON, body(value=1e16), 422, "invalid-events", (0, "value")),
    ("value-2^64", JSON, body(value=2**64), 422, "invalid-events", (0, "value")),
    ("value-bool", JSON, body(value=True), 422, "invalid-events", (0, "value")),
    ("id-too-long", JSON, body(id="x" * 257), 422, "invalid-events", (0, "id")),
    ("id-nul", JSON, body(id="a\x00b"), 422, "invalid-events", (0, "id")),
    ("entity-newline", JSON, body(entity="a\nb"), 422, "invalid-events", (0, "entity")),
    ("attr-control", JSON, body(attributes={"k": "v\x1b[31m"}), 422, "invalid-events", (0, "attributes")),
    ("attr-huge-map", JSON, body(attributes={f"k{i}": "v" for i in range(2_000)}), 422, "invalid-events", (0, "attributes")),
    ("attr-long-key", JSON, body(attributes={"k" * 65: "v"}), 422, "invalid-events", (0, "attributes")),
    ("service-unicode", JSON, body(service="chéckout"), 422, "invalid-events", (0, "service")),
    ("second-item", JSON, json.dumps([ev(id="ok"), ev(id="bad", time=2**64)]).encode(), 202, "", None),
    ("too-large", JSON, b"[" + b'"x",' * LIMIT + b'"x"]', 413, "body-too-large", None),
    ("too-many", JSON, orjson.dumps([ev(id=f"e{i}") for i in range(101)]), 413, "too-many-items", None),
    ("deep-json", JSON, b"[" * 10_000 + b"]" * 10_000, 400, "invalid-body", None),
    ("deep-object", JSON, b'{"a":' * 2_000 + b"1" + b"}" * 2_000, 400, "invalid-body", None),
    ("invalid-utf8", JSON, b'{"service":"\xff\xfe","type":"t"}', 400, "invalid-body", None),
    ("utf16-bom", JSON, "\ufeff" .encode("utf-16") + body().decode().encode("utf-16-le"), 400, "invalid-body", None),
    ("lone-surrogate", JSON, b'{"service":"s","type":"t","id":"\\ud800"}', 400, "invalid-body", None),
    ("empty", JSON, b"", 400, "empty-body", None),
    ("scalar", JSON, b"42", 400, "invalid-body", None),
    ("text-plain", {"content-type": "text/plain"}, body(), 415, "unsupported-media-type", None),
    ("no-content-type", {}, body(), 415, "unsupported-media-type", None),
    ("yaml-on-events", {"content-type": "application/yaml"}, b"a: 1", 415, "unsupported-media-type", None),
    ("brotli", {**JSON, "content-encoding": "br"}, body(), 415, "unsupported-media-type", None),
    ("not-gzip", {**JSON, "content-encoding": "gzip"}, body(), 400, "invalid-body", None),
    ("truncated-gzip", {**JSON, "content-encoding": "gzip"}, _gzip(body())[:-8], 400, "invalid-body", None),
    ("gzip-bomb", {**JSON, "content-encoding": "gzip"}, gzip_bomb(64 << 20), 413, "body-too-large", None),
    ("ndjson-garbage", {"content-type": "application/x-ndjson"}, b"\x00\x01\n[[[\n", 422, "invalid-events", (0, None)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("headers", "content", "status", "kind", "where"),
    [pytest.param(*case[1:], id=case[0]) for case in CASES],
)
async def test_hostile_request_is_answered_and_the_intake_stays_whole(
    api: Api,
    headers: dict[str, str],
    content: bytes,
    status: int,
    kind: str,
    where: tuple[int | None, str | None] | None,
) -> None:
    response = await api.client.post("/v1/events", content=content, headers=headers)
    assert response.status_code == status, response.text[:500]
    if status != 202:
        assert response.headers["content-type"] == "application/problem+json"
        problem = response.json()
        assert problem["type"] == U + kind
        assert problem["status"] == status
        if where is not None:
            first = problem["errors"][0]
            assert (first["index"], first["field"]) == where
    await _still_whole(api)


async def test_the_2_64_time_leaks_no_slot_however_often(api: Api) -> None:
    """The bug: each such request kept its slots, so ten of them refused every event."""
    for _ in range(3 * 10):
        response = await api.client.post("/v1/events", content=body(time=2**64), headers=JSON)
        assert response.status_code == 422
    await _still_whole(api)


async def test_a_streamed_body_is_cut_at_the_limit(api: Api) -> None:
    """No Content-Length: the limit is applied while reading."""
    endless = b"[" + b'"x",' * (4 * LIMIT) + b'"x"]'
    response = await api.client.post("/v1/events", content=_chunks(endless), headers=JSON)
    assert response.status_code == 413
    assert response.json()["type"] == U + "body-too-large"
    await _still_whole(api)


async def test_a_gzip_bomb_is_refused_within_bounded_memory(api: Api) -> None:
    bomb = gzip_bomb(256 << 20)  # 256 MiB of zeros in about 250 KB
    assert len(bomb) < 512 * 1024
    headers = {**JSON, "content-encoding": "gzip"}
    tracemalloc.start()
    try:
        response = await api.client.post("/v1/events", content=_chunks(bomb), headers=headers)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert response.status_code == 413
    assert peak < 8 * 1024 * 1024, f"peak {peak} bytes while refusing a gzip bomb"
    await _still_whole(api)


async def _still_whole(api: Api) -> None:
    assert api.inflight() == 0
    assert (await api.client.get("/healthz")).status_code == 200
    before = len(api.publisher.sent)
    ok = await api.client.post("/v1/events", content=body(id="after"), headers=JSON)
    assert ok.status_code == 202, ok.text
    assert len(api.publisher.sent) == before + 1
    assert api.inflight() == 0
    for record in api.publisher.sent:
        Event.from_json(record.value)  # whatever was produced is a valid event


# -- YAML bombs -----------------------------------------------------------------------


def _laughs(levels: int) -> str:
    lines = ['a: &a ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for n in range(1, levels):
        prev, name = chr(ord("a") + n - 1), chr(ord("a") + n)
        lines.append(f"{name}: &{name} [{', '.join([f'*{prev}'] * 9)}]")
    return "\n".join(lines) + "\n"


def _receiver_bomb() -> str:
    """A 14 KB Receiver whose aliases would store about 10 MB."""
    block = "x" * 14_000
    refs = ", ".join(["*h"] * 700)
    return (
        "apiVersion: slawatch/v1\nkind: Receiver\nmetadata: {name: r}\n"
        f"spec:\n  type: webhook\n  url: https://example.com/\n  note: &h {block}\n"
        f"  headers: [{refs}]\n"
    )


YAML_BOMBS = [
    pytest.param(_laughs(9), "expand", id="billion-laughs"),
    pytest.param(_receiver_bomb(), "expand", id="receiver-x700"),
    pytest.param("[" * 10_000, "deeper", id="deep-flow"),
    pytest.param("a:\n" + "".join("  " * n + "- \n" for n in range(1, 200)), "deeper", id="deep-block"),
    pytest.param("&a [*a]", "recursive", id="recursive-alias"),
    pytest.param("a: !!python/object/apply:os.system ['true']", "could not determine", id="python-tag"),
]  # fmt: skip


@pytest.mark.parametrize(("text", "said"), YAML_BOMBS)
def test_yaml_bombs_are_refused_within_bounded_memory(text: str, said: str) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(yaml.YAMLError) as refused:
            yamlsafe.load_all(text)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert said in str(refused.value)
    assert peak < 16 * 1024 * 1024, f"peak {peak} bytes"
    # the definitions loader reports it as one error for the file, not an exception
    located, errors = parse_text(text, "bomb.yaml")
    assert not located
    assert len(errors) == 1 and errors[0].file == "bomb.yaml"


def test_yaml_aliases_within_the_allowance_still_work() -> None:
    text = "base: &b {team: payments, tier: gold}\nx:\n  <<: *b\n  tier: silver\ny: *b\n"
    assert yamlsafe.load_all(text) == [
        {
            "base": {"team": "payments", "tier": "gold"},
            "x": {"team": "payments", "tier": "silver"},
            "y": {"team": "payments", "tier": "gold"},
        }
    ]


def test_json_depth_is_bounded_too() -> None:
    deep: list[Any] = []
    for _ in range(yamlsafe.MAX_DEPTH):
        deep = [deep]
    assert yamlsafe.too_deep(deep)
    assert not yamlsafe.too_deep({"a": [[{"b": 1}]]})


# -- garbage on the raw topic (routing; the loop over the real broker: integration) ----

RAW_GARBAGE = [
    pytest.param(b'{"service":"s","type":"t","time":18446744073709551616}', "invalid_event", id="time-2^64"),
    pytest.param(b'{"service":"s","type":"t","time":9223372036854775808}', "invalid_event", id="time-2^63"),
    pytest.param(orjson.dumps(ev(time=NOW + 86_400_000)), "future", id="future"),
    pytest.param(b'{"service":"s","type":"t","value":NaN}', "invalid_json", id="NaN"),
    pytest.param(b"\xff\xfe\x00garbage", "invalid_json", id="binary"),
    pytest.param(b"[" * 10_000, "invalid_json", id="deep"),
    pytest.param(b'"just a string"', "not_an_object", id="scalar"),
    pytest.param(None, "invalid_json", id="tombstone"),
    pytest.param(b"x" * (2 << 20), "invalid_json", id="2MiB"),
]  # fmt: skip


@pytest.mark.parametrize(("value", "reason"), RAW_GARBAGE)
def test_raw_garbage_is_dead_lettered_with_its_reason(value: bytes | None, reason: str) -> None:
    routed = route_raw(RawRecord("h.events.raw", 0, 7, value), TOPICS, NOW)
    assert routed.reason == reason
    assert routed.out.topic == TOPICS.deadletter
    assert len(routed.out.value) < 1024 * 1024  # fits under the producer's request cap
    letter = DeadLetter.from_json(routed.out.value)
    assert (letter.reason, letter.offset, letter.rejected_by) == (reason, 7, "ingest.raw")
    assert letter.detail
