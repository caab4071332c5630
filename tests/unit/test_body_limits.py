"""The body limit of every service (shared.http.limits), applied while reading.

A small app under :class:`BodyLimit` through httpx's ASGI transport (the real
request/response path, no server): a declared Content-Length over the limit is
refused before the app reads anything (the body already sent is dropped up to the
drain budget, none of it with ``Expect: 100-continue`` or past the budget); a
streamed body without Content-Length is cut one chunk past the limit, the app never
gets more, the rest is dropped up to the budget; the exact limit passes. Then the
real notifier app: a 30 MB JSON POST is a 413 and the notifier keeps answering; the
OpenAPI of each service documents the 413 on operations that take a body.
"""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import orjson
import pytest
from fastapi import FastAPI, Request
from pydantic import BaseModel

from shared.http.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from shared.http.problems import PROBLEM_MEDIA_TYPE
from tests.keys import ADMIN_KEY, bearer
from tests.unit.test_route_auth import BUILDERS, build_notifier

LIMIT = 1_000
CHUNK = 100
TYPE = "urn:slawatch:problem:body-too-large"


class Doc(BaseModel):
    text: str


def small_app(limit: int = LIMIT, drain: int = 50 * LIMIT) -> tuple[FastAPI, list[int]]:
    """An app that parses JSON (FastAPI reads it whole) and one that streams."""
    app = FastAPI()
    seen: list[int] = []

    @app.post("/json")
    async def json_route(doc: Doc) -> dict[str, int]:
        seen.append(len(doc.text))
        return {"length": len(doc.text)}

    @app.post("/stream")
    async def stream_route(request: Request) -> dict[str, int]:
        size = 0
        async for chunk in request.stream():
            size += len(chunk)
        seen.append(size)
        return {"length": size}

    app.add_middleware(BodyLimit, max_body_bytes=limit, drain_bytes=drain)
    return app, seen


class Chunks:
    """A request body without Content-Length that records how much of it was pulled."""

    def __init__(self, total: int, chunk: int = CHUNK) -> None:
        self.total = total
        self.chunk = chunk
        self.pulled = 0

    async def __aiter__(self) -> AsyncIterator[bytes]:
        while self.pulled < self.total:
            part = min(self.chunk, self.total - self.pulled)
            self.pulled += part
            yield b"x" * part


def client(app: FastAPI) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t")


def assert_413(response: httpx.Response, limit: int = LIMIT) -> None:
    assert response.status_code == 413
    assert response.headers["content-type"] == PROBLEM_MEDIA_TYPE
    assert response.headers["connection"] == "close"
    body = response.json()
    assert body["type"] == TYPE
    assert body["status"] == 413
    assert str(limit) in body["detail"]


def json_of_size(size: int) -> bytes:
    """A valid ``Doc`` body of exactly ``size`` bytes."""
    frame = len(orjson.dumps({"text": ""}))
    return orjson.dumps({"text": "y" * (size - frame)})


@pytest.mark.parametrize("path", ["/json", "/stream"])
@pytest.mark.parametrize(
    ("size", "expect", "pulled"),
    [
        pytest.param(10 * LIMIT, False, 10 * LIMIT, id="sent-part-dropped"),
        pytest.param(10 * LIMIT, True, 0, id="expect-continue-nothing-read"),
        pytest.param(100 * LIMIT, False, 0, id="over-the-drain-nothing-read"),
    ],
)
async def test_a_declared_length_over_the_limit_is_refused_before_the_app_reads(
    path: str, size: int, expect: bool, pulled: int
) -> None:
    app, seen = small_app()
    body = Chunks(size)
    headers = {"content-length": str(size)} | ({"expect": "100-continue"} if expect else {})
    async with client(app) as http:
        response = await http.post(path, content=body, headers=headers)
    assert_413(response)
    assert seen == []
    assert body.pulled == pulled


@pytest.mark.parametrize("path", ["/json", "/stream"])
@pytest.mark.parametrize(
    ("size", "pulled"),
    [
        pytest.param(10 * LIMIT, 10 * LIMIT, id="rest-dropped"),
        # the drain stops at its budget (counted from the first byte)
        pytest.param(100 * LIMIT, 50 * LIMIT + CHUNK, id="drain-stops-at-budget"),
    ],
)
async def test_a_streamed_body_is_cut_one_chunk_past_the_limit(
    path: str, size: int, pulled: int
) -> None:
    app, seen = small_app()
    body = Chunks(size)
    async with client(app) as http:
        response = await http.post(path, content=body)
    assert "content-length" not in response.request.headers
    assert_413(response)
    assert seen == []
    assert body.pulled <= pulled


async def test_the_exact_limit_passes_and_one_byte_more_does_not() -> None:
    app, seen = small_app()
    async with client(app) as http:
        exact = await http.post(
            "/json", content=json_of_size(LIMIT), headers={"content-type": "application/json"}
        )
        streamed = await http.post("/stream", content=Chunks(LIMIT))
        over = await http.post("/stream", content=Chunks(LIMIT + 1))
        again = await http.post("/stream", content=Chunks(LIMIT - 1))
    assert exact.status_code == 200, exact.text
    assert exact.json() == {"length": LIMIT - len(b'{"text":""}')}
    assert streamed.json() == {"length": LIMIT}
    assert_413(over)
    assert again.json() == {"length": LIMIT - 1}
    assert seen == [LIMIT - len(b'{"text":""}'), LIMIT, LIMIT - 1]


async def test_requests_without_a_body_pass() -> None:
    app = FastAPI()

    @app.get("/")
    async def root() -> dict[str, bool]:
        return {"ok": True}

    app.add_middleware(BodyLimit, max_body_bytes=0)
    async with client(app) as http:
        assert (await http.get("/")).json() == {"ok": True}


def test_a_negative_limit_is_a_mistake() -> None:
    with pytest.raises(ValueError, match="must be >= 0"):
        BodyLimit(FastAPI(), -1)


async def test_the_notifier_answers_a_30_mb_json_body_with_413_and_keeps_serving() -> None:
    app = build_notifier()
    body = b'{"comment": "' + b"z" * (30 * 1024 * 1024) + b'"}'
    hostile = Chunks(30 * 1024 * 1024, chunk=64 * 1024)
    async with client(app) as http:
        headers = {**bearer(ADMIN_KEY), "content-type": "application/json"}
        declared = await http.post("/v1/breaches/0/ack", content=body, headers=headers)
        streamed = await http.post("/v1/silences", content=hostile, headers=headers)
        healthz = await http.get("/healthz")
    assert_413(declared, DEFAULT_MAX_BODY_BYTES)
    assert_413(streamed, DEFAULT_MAX_BODY_BYTES)
    # the rest of the body is read and dropped (so a client that writes it all first
    # can read the answer), never kept
    assert hostile.pulled == 30 * 1024 * 1024
    assert healthz.status_code == 200


@pytest.mark.parametrize("service", sorted(BUILDERS))
def test_every_operation_that_takes_a_body_documents_the_413(service: str) -> None:
    schema = BUILDERS[service]().openapi()
    checked = 0
    for path, operations in schema["paths"].items():
        for method, operation in operations.items():
            if "requestBody" in operation or method in ("post", "put", "patch"):
                assert "413" in operation["responses"], f"{method} {path}"
                checked += 1
    assert checked > 0 or service == "evaluator"


def test_ingest_keeps_its_own_body_answers_below_the_shared_limit() -> None:
    # its intake counts and names its own 413 (decoded size); the shared limit is larger
    app = BUILDERS["ingest"]()
    limits = [m.kwargs["max_body_bytes"] for m in app.user_middleware if m.cls is BodyLimit]  # type: ignore[comparison-overlap]
    assert limits == [2 * max(2048, DEFAULT_MAX_BODY_BYTES)]
