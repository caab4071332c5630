"""The HTTP API: ``POST /v1/events``, the alert webhooks
``POST /v1/integrations/alertmanager`` and ``/v1/integrations/grafana``, plus
``/healthz``, ``/readyz``, ``/metrics``.

Order of checks on every intake endpoint: media type and content coding (415),
shutting down (503, ``services.ingest.backpressure.Drain``),
fail-fast when the intake is open or saturated (503, ``services.ingest.backpressure``),
declared then actual body size (413, read incrementally; for gzip the decompressed
size, streamed), decoding (400), item count (413), then every item is normalized;
ids acknowledged moments ago are answered without producing them again
(``services.ingest.dedup``); the other valid events are produced and the response
waits for the broker's acknowledgement of each one, at most ``publish_timeout_s``
(see ``services.ingest.results`` for the 202 / 422 / 503 decision).

Rejected HTTP items are *not* sent to the dead-letter topic: the client has the
errors in the response and is the one able to fix and resend them.
"""

from __future__ import annotations

import asyncio
import dataclasses
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Annotated, Any

import orjson
from fastapi import FastAPI, Query, Request, Response
from prometheus_client import CollectorRegistry

from services.ingest import alerts, cloudevents, problems, results
from services.ingest.backpressure import Backpressure, Drain
from services.ingest.body import declared_too_large, read_decoded
from services.ingest.dedup import RecentIds
from services.ingest.exceptions import BodyTooLargeError, InvalidEncodingError
from services.ingest.items import Decoded, Item, Rejected
from services.ingest.metrics import IngestMetrics
from services.ingest.normalize import (
    DEFAULT_MAX_FUTURE_SKEW_MS,
    IdFactory,
    normalize,
    random_id,
)
from services.ingest.parsing import (
    NDJSON_TYPES,
    Parser,
    check_encoding,
    content_coding,
    parser_for,
)
from services.ingest.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemModel
from services.ingest.publisher import Publisher, send_with_retries
from services.ingest.records import event_record
from shared.apikeys.scopes import Scope
from shared.http.app import service_app
from shared.http.auth import Authenticator, require
from shared.http.limits import DEFAULT_MAX_BODY_BYTES
from shared.runtime import ReadinessCheck
from shared.schemas import EVENT_TIME_MAX_MS, EVENT_TIME_MIN_MS, Event
from shared.timeutil import Clock
from shared.topics import Topics

log = logging.getLogger(__name__)

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

Formats: JSON object or array, NDJSON, CloudEvents 1.0 structured
(`application/cloudevents+json`), batch (`application/cloudevents-batch+json`) and
binary mode (`ce-*` headers); `Content-Encoding: gzip` is accepted. Alertmanager and
Grafana alert webhooks have their own endpoints under `/v1/integrations/`.

Limits: `max_body_bytes` (default 5 MiB) per request, after gzip decompression, and
`max_batch_items` (default 10000) events per request; both answer `413`. At most
`max_inflight` (default 50000) events wait for the broker at a time; past it, or
right after the broker failed, the answer is `503` with `Retry-After`. An id
acknowledged within the last `dedup_horizon_ms` (default 5 min) is answered as a
`duplicate` and not produced again.

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


#: A stopping instance is back (restarted) or replaced within seconds.
SHUTDOWN_RETRY_AFTER_S = 5


def monotonic_ms() -> int:
    """Milliseconds of a clock that never jumps (cooldowns, dedup horizon)."""
    return time.monotonic_ns() // 1_000_000


CLOUDEVENT_EXAMPLE = {
    "specversion": "1.0",
    "id": "probe-4711",
    "source": "/synthetics/eu-west-1",
    "type": "check",
    "time": "2026-11-28T13:00:00Z",
    "data": {"service": "checkout", "outcome": "good", "value": 231},
}


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
    publish_timeout_s: float = 10.0
    max_inflight: int = 50_000
    overload_cooldown_ms: int = 1_000
    dedup_capacity: int = 100_000
    dedup_horizon_ms: int = 300_000
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS
    backpressure: Backpressure | None = None
    recent: RecentIds | None = None
    #: set by ``main`` to stop accepting on shutdown; one of its own when not given
    drain: Drain | None = None
    #: time for cooldowns and the dedup horizon (not event time: ``clock`` may be fixed)
    timer: Clock = monotonic_ms


@dataclass(frozen=True)
class _Intake:
    """The deps with the stateful parts made concrete."""

    deps: IngestDeps
    gate: Backpressure
    recent: RecentIds
    drain: Drain
    sends: set[asyncio.Task[list[str | None]]] = dataclasses.field(default_factory=set)


def create_app(
    deps: IngestDeps,
    registry: CollectorRegistry,
    checks: dict[str, ReadinessCheck],
    *,
    auth: Authenticator,
    metrics_auth: bool = False,
) -> FastAPI:
    """The ingest app (``shared.http.app.service_app``); nothing global, everything
    injected. Every intake endpoint needs ``events:write``."""
    intake = _Intake(
        deps,
        deps.backpressure or Backpressure(deps.max_inflight, deps.overload_cooldown_ms, deps.timer),
        deps.recent or RecentIds(deps.dedup_capacity, deps.dedup_horizon_ms, deps.timer),
        deps.drain or Drain(),
    )
    deps.metrics.inflight.set_function(lambda: intake.gate.inflight)

    async def intake_ready() -> bool:
        return await intake.drain.ready() and await intake.gate.ready()

    app = service_app(
        "slawatch ingest",
        summary="Events in over HTTP and Kafka; the definitions (configuration) API.",
        auth=auth,
        registry=registry,
        checks={**checks, "intake": intake_ready},
        metrics_auth=metrics_auth,
        # a backstop on the wire only: the intake's own check (decoded size, counted in
        # the rejection metric) and the config API's 1 MiB answer first
        max_body_bytes=2 * max(deps.max_body_bytes, DEFAULT_MAX_BODY_BYTES),
        version="1",
        description=DESCRIPTION,
    )

    @app.post(
        "/v1/events",
        status_code=202,
        tags=["events"],
        summary="Submit events",
        response_model=results.IngestResponse,
        responses=_problem_responses(),
        openapi_extra={"requestBody": _request_body_doc()},
        dependencies=[require(Scope.EVENTS_WRITE)],
    )
    async def post_events(request: Request) -> Response:
        return await handle_post(intake, request)

    for flavour in ("alertmanager", "grafana"):
        app.add_api_route(
            f"/v1/integrations/{flavour}",
            _webhook_endpoint(intake, flavour),
            methods=["POST"],
            status_code=202,
            tags=["integrations"],
            summary=f"{flavour.capitalize()} alert webhook",
            description=WEBHOOK_DESCRIPTION.format(flavour=flavour),
            response_model=alerts.WebhookResponse,
            responses=_problem_responses(WEBHOOK_422),
            dependencies=[require(Scope.EVENTS_WRITE)],
        )

    return app


WEBHOOK_DESCRIPTION = """Point a {flavour} webhook at this URL. Each alert becomes one event: type
`alert.firing` (outcome `bad`, time `startsAt`) or `alert.resolved` (outcome `good`,
time `endsAt`); id `<fingerprint>@<startsAt ms>` (+ `/resolved`); service from the
first label named in `?service_label=` (comma-separated, default `service`), else
`?service=` when given; the other labels become attributes.

An alert that cannot be mapped (no service label and no `?service=`, a label value
that is not a service name, a bad status or time) is listed in `results` with its
`alertname` and `reason`, logged as a warning and counted in
`slawatch_ingest_alerts_unmapped_total{{flavour, reason}}`; the others go on: `202`
with the `accepted` and `rejected` counts while any alert is accepted, `422` (every
alert's errors, each naming its alert) when none is. See docs/ingest.md.
"""

SERVICE_LABEL_DOC = (
    "labels tried in order for the event's service, comma-separated (default: service)"
)
DEFAULT_SERVICE_DOC = (
    "the service of an alert that has none of the service labels (default: none, such "
    "an alert is rejected); a service name like an event's: 1 to 63 lowercase letters, "
    "digits, '.', '_' or '-', starting with a letter or digit; another value is a 422 "
    "naming `service`"
)


def _webhook_endpoint(intake: _Intake, flavour: alerts.Flavour) -> Any:
    async def endpoint(
        request: Request,
        service_label: Annotated[str | None, Query(description=SERVICE_LABEL_DOC)] = None,
        # checked here, not by the framework: a 422 that names `service` in words
        service: Annotated[
            str | None,
            Query(
                description=DEFAULT_SERVICE_DOC,
                examples=["checkout"],
                json_schema_extra={"pattern": alerts.SERVICE_PATTERN},
            ),
        ] = None,
    ) -> Response:
        default = alerts.default_service(service)
        if isinstance(default, Problem):
            return _reject(intake.deps, default)
        integration = alerts.Integration(flavour, alerts.service_labels(service_label), default)
        delivery = alerts.Delivery(integration, intake.deps.metrics.count_unmapped_alert)
        if not cloudevents.is_json_type(request.headers.get("content-type")):
            return _reject(
                intake.deps,
                problems.unsupported_media_type("an alert webhook body is application/json"),
            )
        return await _intake(intake, request, delivery.parse, delivery.report)

    return endpoint


async def handle_post(intake: _Intake, request: Request) -> Response:
    """``POST /v1/events``: see the module docstring for the order of checks."""
    parser: Parser | Problem
    if cloudevents.is_binary(request.headers):

        def parser(body: bytes, _max_items: int) -> list[Item] | Problem:
            return cloudevents.parse_binary(request.headers, body)

    else:
        parser = parser_for(request.headers.get("content-type"))
    if isinstance(parser, Problem):
        return _reject(intake.deps, parser)
    return await _intake(intake, request, parser)


#: Given the rejected items and the decided answer, the answer to send (the alert
#: webhooks name, log and count their unmapped alerts here).
Report = Callable[[Sequence[Rejected], Problem | dict[str, Any]], Problem | dict[str, Any]]


async def _intake(
    intake: _Intake, request: Request, parser: Parser, report: Report | None = None
) -> Response:
    """Shared by every intake endpoint once the parser is chosen."""
    deps = intake.deps
    bad_coding = check_encoding(request.headers.get("content-encoding"))
    if bad_coding is not None:
        return _reject(deps, bad_coding)
    if intake.drain.draining:
        headers = {"Retry-After": str(SHUTDOWN_RETRY_AFTER_S)}
        return _reject(deps, problems.shutting_down(), headers)
    with intake.drain.request():
        return await _admitted(intake, request, parser, report)


async def _admitted(
    intake: _Intake, request: Request, parser: Parser, report: Report | None
) -> Response:
    """A request taken before any stop: it runs to its response even while draining."""
    deps = intake.deps
    if intake.gate.is_open() or intake.gate.saturated():
        return _overloaded(intake, "the broker is failing or too many events are in flight")
    if declared_too_large(request.headers.get("content-length"), deps.max_body_bytes):
        return _reject(deps, problems.body_too_large(deps.max_body_bytes))
    coding = content_coding(request.headers.get("content-encoding"))
    try:
        body = await read_decoded(request.stream(), coding, deps.max_body_bytes)
    except BodyTooLargeError:
        return _reject(deps, problems.body_too_large(deps.max_body_bytes))
    except InvalidEncodingError as exc:
        return _reject(deps, problems.invalid_body(str(exc)))
    items = parser(body, deps.max_batch_items)
    if isinstance(items, Problem):
        return _reject(deps, items)
    return await _ingest_items(intake, items, report)


async def _ingest_items(intake: _Intake, items: list[Item], report: Report | None) -> Response:
    deps = intake.deps
    received_at = deps.clock()
    deps.metrics.batch_size.labels("http").observe(len(items))
    rejected: list[Rejected] = [item for item in items if isinstance(item, Rejected)]
    valid: list[tuple[int, Event]] = []
    for item in items:
        if isinstance(item, Decoded):
            outcome = normalize(
                item.data,
                received_at,
                index=item.index,
                new_id=deps.new_id,
                max_future_skew_ms=deps.max_future_skew_ms,
            )
            if isinstance(outcome, Rejected):
                rejected.append(outcome)
            else:
                valid.append((item.index, outcome))
    for rejection in rejected:
        deps.metrics.count_rejected("http", rejection.reason)

    repeated = intake.recent.seen_of([e.id for _, e in valid])
    duplicates = [(i, e) for i, e in valid if e.id in repeated]
    fresh = [(i, e) for i, e in valid if e.id not in repeated]
    if fresh and not intake.gate.admit(len(fresh)):
        return _overloaded(intake, f"more than {intake.gate.max_inflight} events in flight")
    published = await _publish(intake, fresh) if fresh else []
    intake.recent.add(p.event.id for p in published if p.error is None)
    deps.metrics.duplicates.inc(len(duplicates))
    published.extend(results.Published(i, e, None, duplicate=True) for i, e in duplicates)
    decision = results.decide(rejected, published)
    if report is not None:
        decision = report(rejected, decision)
    if isinstance(decision, Problem):
        headers = (
            {"Retry-After": str(intake.gate.retry_after_s)} if decision.status == 503 else None
        )
        return _reject(deps, decision, headers)
    return Response(orjson.dumps(decision), status_code=202, media_type="application/json")


async def _publish(intake: _Intake, valid: list[tuple[int, Event]]) -> list[results.Published]:
    """Produce with the in-flight slots already reserved; they are released when the
    send ends, which may be after this request gave up waiting (``publish_timeout_s``),
    and on every other way out of here (a failure before the send started included:
    a leaked slot is never given back, and enough of them refuse every request)."""
    deps, gate, n = intake.deps, intake.gate, len(valid)
    started = time.perf_counter()
    try:
        records = [event_record(e, deps.topics) for _, e in valid]
        # held in intake.sends until done
        send = asyncio.create_task(
            send_with_retries(
                deps.publisher,
                records,
                attempts=deps.publish_attempts,
                backoff_s=deps.retry_backoff_s,
            )
        )
    except BaseException:
        gate.release(n)
        raise
    intake.sends.add(send)  # kept referenced while it runs past a request's timeout
    send.add_done_callback(intake.sends.discard)
    send.add_done_callback(lambda task: _release(gate, n, task))
    outcomes: list[str | None]
    try:
        outcomes = await asyncio.wait_for(asyncio.shield(send), deps.publish_timeout_s)
    except TimeoutError:
        outcomes = [f"not acknowledged within {deps.publish_timeout_s:g} s"] * n
    deps.metrics.publish_seconds.labels("http").observe(time.perf_counter() - started)
    published = [
        results.Published(index, event, error)
        for (index, event), error in zip(valid, outcomes, strict=True)
    ]
    failed = sum(1 for p in published if p.error is not None)
    if failed == n:
        gate.failed()
    else:
        gate.succeeded()
    deps.metrics.count_ingested("http", n - failed)
    deps.metrics.count_rejected("http", "publish_failed", failed)
    return published


def _release(gate: Backpressure, n: int, task: asyncio.Future[Any]) -> None:
    gate.release(n)
    if not task.cancelled() and task.exception() is not None:
        log.error("publishing failed unexpectedly", exc_info=task.exception())


def _overloaded(intake: _Intake, detail: str) -> Response:
    headers = {"Retry-After": str(intake.gate.retry_after_s)}
    return _reject(intake.deps, problems.overloaded(detail), headers)


def _reject(deps: IngestDeps, problem: Problem, headers: dict[str, str] | None = None) -> Response:
    deps.metrics.count_request_rejected(problem.reason)
    return problems.response(problem, headers)


WEBHOOK_422 = (
    "No alert could be mapped (`errors`: index, field and a message naming the alert), "
    "or `service` is not a service name (`invalid-query`, `errors` names `service`)."
)


def _problem_responses(
    text_422: str = "Every event was invalid; `errors` names index, field and message.",
) -> dict[int | str, dict[str, Any]]:
    schema = {"$ref": "#/components/schemas/ProblemModel"}
    texts = {
        400: "Body is not JSON, not an object or array of objects, or holds no event.",
        413: "Body larger than max_body_bytes, or more events than max_batch_items.",
        415: "Content-Type not accepted (or a Content-Encoding other than identity).",
        422: text_422,
        503: "No event acknowledged, overloaded or shutting down; retry after Retry-After.",
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
        "anyOf": [
            {
                "type": "integer",
                "minimum": EVENT_TIME_MIN_MS,
                "exclusiveMaximum": EVENT_TIME_MAX_MS,
            },
            # years 2000-2099: the range below, in the form a schema can state
            {"type": "string", "format": "date-time", "pattern": "^20[0-9]{2}-"},
        ],
        "description": "event time: epoch ms or RFC 3339, from 2000-01-01T00:00:00Z to "
        "now + SLAWATCH_MAX_FUTURE_SKEW_MS (a later time is refused with 422; no schema "
        "can state a bound that moves with the clock); default: time of receipt",
    }
    ndjson_example = "\n".join(orjson.dumps(e).decode() for e in EXAMPLE_EVENTS) + "\n"
    ndjson = {"schema": {"type": "string"}, "example": ndjson_example}
    return {
        "required": True,
        "content": {
            "application/json": {
                "schema": {
                    "anyOf": [
                        event_schema,
                        {"type": "array", "items": event_schema, "minItems": 1},
                    ]
                },
                "examples": {
                    "batch": {"summary": "an array of events", "value": EXAMPLE_EVENTS},
                    "single": {"summary": "one event", "value": EXAMPLE_EVENTS[1]},
                },
            },
            **dict.fromkeys(NDJSON_TYPES, ndjson),
            cloudevents.STRUCTURED: {
                "schema": {"type": "object"},
                "example": CLOUDEVENT_EXAMPLE,
            },
            cloudevents.BATCH: {
                "schema": {"type": "array", "items": {"type": "object"}},
                "example": [CLOUDEVENT_EXAMPLE],
            },
        },
    }
