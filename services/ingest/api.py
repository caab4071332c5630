"""The HTTP API: ``POST /v1/events`` plus ``/healthz``, ``/readyz``, ``/metrics``.

Order of checks on ``POST /v1/events``: media type and content coding (415),
declared then actual body size (413, read incrementally), decoding (400), item
count (413), then every item is normalized; valid events are produced and the
response waits for the broker's acknowledgement of each one (see
``services.ingest.results`` for the 202 / 422 / 503 decision).

Rejected HTTP items are *not* sent to the dead-letter topic: the client has the
errors in the response and is the one able to fix and resend them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import orjson
from fastapi import FastAPI, Request, Response
from prometheus_client import CollectorRegistry

from services.ingest import problems, results
from services.ingest.body import declared_too_large, read_limited
from services.ingest.exceptions import BodyTooLargeError
from services.ingest.items import Decoded, Rejected
from services.ingest.metrics import IngestMetrics
from services.ingest.normalize import IdFactory, normalize, random_id
from services.ingest.parsing import NDJSON_TYPES, check_encoding, parser_for
from services.ingest.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemModel
from services.ingest.publisher import Publisher, send_with_retries
from services.ingest.records import event_record
from shared.runtime import ReadinessCheck, ops_router
from shared.schemas import Event
from shared.timeutil import Clock
from shared.topics import Topics

DESCRIPTION = """\
The front door of slawatch: monitoring systems and scripts push service events here.

Send one event, a JSON array of events, or NDJSON (one event per line). Each event
is validated and normalized into the canonical event and published on the events
topic keyed by `service`. The `202` response is sent only after the broker
acknowledged every accepted event.

Conveniences: a missing `id` becomes a random UUID (a retried request is then not
deduplicated: send your own ids if you retry), a missing `time` becomes the time of
receipt. `received_at` is always set by slawatch. `time` is RFC 3339 text with an
offset or epoch milliseconds.

Limits: `max_body_bytes` (default 5 MiB) per request and `max_batch_items`
(default 10000) events per request; both answer `413`.

Errors are `application/problem+json` (RFC 9457) with an `errors` list naming the
item `index` (array index, or 0-based line number for NDJSON) and the `field`.
Invalid items are answered, not dead-lettered.
"""

EXAMPLE_EVENTS = [
    {
        "id": "req-7f3a9",
        "service": "checkout",
        "type": "request",
        "time": "2026-11-28T13:00:00.250Z",
        "outcome": "good",
        "value": 182.5,
        "attributes": {"customer": "acme", "region": "eu-west-1"},
        "source": "nginx",
    },
    {"service": "checkout", "type": "request", "time": 1795957200500, "outcome": "bad"},
]


@dataclass(frozen=True)
class IngestDeps:
    """What the HTTP API needs; built once in ``main`` and passed in."""

    publisher: Publisher
    topics: Topics
    metrics: IngestMetrics
    clock: Clock
    max_body_bytes: int
    max_batch_items: int
    new_id: IdFactory = random_id
    publish_attempts: int = 2
    retry_backoff_s: float = 0.1


def create_app(
    deps: IngestDeps, registry: CollectorRegistry, checks: dict[str, ReadinessCheck]
) -> FastAPI:
    """The ingest app; nothing global, everything injected."""
    app = FastAPI(title="slawatch ingest", version="1", description=DESCRIPTION)
    app.include_router(ops_router(registry, checks))

    @app.post(
        "/v1/events",
        status_code=202,
        tags=["events"],
        summary="Submit events",
        response_model=results.IngestResponse,
        responses=_problem_responses(),
        openapi_extra={"requestBody": _request_body_doc()},
    )
    async def post_events(request: Request) -> Response:
        return await handle_post(deps, request)

    return app


async def handle_post(deps: IngestDeps, request: Request) -> Response:
    """``POST /v1/events``: see the module docstring for the order of checks."""
    parser = parser_for(request.headers.get("content-type"))
    if isinstance(parser, Problem):
        return _reject(deps, parser)
    bad_coding = check_encoding(request.headers.get("content-encoding"))
    if bad_coding is not None:
        return _reject(deps, bad_coding)
    if declared_too_large(request.headers.get("content-length"), deps.max_body_bytes):
        return _reject(deps, problems.body_too_large(deps.max_body_bytes))
    try:
        body = await read_limited(request.stream(), deps.max_body_bytes)
    except BodyTooLargeError:
        return _reject(deps, problems.body_too_large(deps.max_body_bytes))
    items = parser(body, deps.max_batch_items)
    if isinstance(items, Problem):
        return _reject(deps, items)

    received_at = deps.clock()
    deps.metrics.batch_size.labels("http").observe(len(items))
    rejected: list[Rejected] = [item for item in items if isinstance(item, Rejected)]
    valid: list[tuple[int, Event]] = []
    for item in items:
        if isinstance(item, Decoded):
            outcome = normalize(item.data, received_at, index=item.index, new_id=deps.new_id)
            if isinstance(outcome, Rejected):
                rejected.append(outcome)
            else:
                valid.append((item.index, outcome))
    for rejection in rejected:
        deps.metrics.count_rejected("http", rejection.reason)

    published = await _publish(deps, valid)
    decision = results.decide(rejected, published)
    if isinstance(decision, Problem):
        headers = {"Retry-After": "1"} if decision.status == 503 else None
        return _reject(deps, decision, headers)
    return Response(orjson.dumps(decision), status_code=202, media_type="application/json")


async def _publish(deps: IngestDeps, valid: list[tuple[int, Event]]) -> list[results.Published]:
    if not valid:
        return []
    started = time.perf_counter()
    outcomes = await send_with_retries(
        deps.publisher,
        [event_record(e, deps.topics) for _, e in valid],
        attempts=deps.publish_attempts,
        backoff_s=deps.retry_backoff_s,
    )
    deps.metrics.publish_seconds.labels("http").observe(time.perf_counter() - started)
    published = [
        results.Published(index, event, error)
        for (index, event), error in zip(valid, outcomes, strict=True)
    ]
    failed = sum(1 for p in published if p.error is not None)
    deps.metrics.count_ingested("http", len(published) - failed)
    deps.metrics.count_rejected("http", "publish_failed", failed)
    return published


def _reject(deps: IngestDeps, problem: Problem, headers: dict[str, str] | None = None) -> Response:
    deps.metrics.count_request_rejected(problem.reason)
    return problems.response(problem, headers)


def _problem_responses() -> dict[int | str, dict[str, Any]]:
    schema = {"$ref": "#/components/schemas/ProblemModel"}
    texts = {
        400: "Body is not JSON, not an object or array of objects, or holds no event.",
        413: "Body larger than max_body_bytes, or more events than max_batch_items.",
        415: "Content-Type not accepted (or a Content-Encoding other than identity).",
        422: "Every event was invalid; `errors` names index, field and message.",
        503: "No valid event was acknowledged by the broker; retry with the same ids.",
    }
    return {
        status: {
            "description": text,
            "model": ProblemModel,
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status, text in texts.items()
    }


def _request_body_doc() -> dict[str, Any]:
    event_schema = Event.model_json_schema()
    event_schema["required"] = [
        name for name in event_schema.get("required", []) if name not in ("id", "time")
    ]
    event_schema["properties"].pop("received_at", None)
    event_schema["properties"]["time"] = {
        "anyOf": [{"type": "integer"}, {"type": "string", "format": "date-time"}],
        "description": "event time: epoch ms or RFC 3339; default: time of receipt",
    }
    ndjson_example = "\n".join(orjson.dumps(e).decode() for e in EXAMPLE_EVENTS) + "\n"
    ndjson = {"schema": {"type": "string"}, "example": ndjson_example}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {"anyOf": [event_schema, {"type": "array", "items": event_schema}]},
                "examples": {
                    "batch": {"summary": "an array of events", "value": EXAMPLE_EVENTS},
                    "single": {"summary": "one event", "value": EXAMPLE_EVENTS[1]},
                },
            },
            **dict.fromkeys(NDJSON_TYPES, ndjson),
        },
    }
