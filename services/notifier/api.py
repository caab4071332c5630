"""HTTP API of the notifier: read-only breach history plus the ops endpoints.

    GET /v1/breaches?status=&agreement=&service=&limit=&cursor=
        → {"items": [BreachPublic…], "next_cursor": str | null}
        newest first by (opened_at, id); ``cursor`` is the ``next_cursor`` of the
        previous page (``<opened_at>:<id>``: any such position is a valid cursor)
    GET /v1/breaches/{id}
        → {"breach": BreachPublic, "events": [EventPublic…],
           "deliveries": [DeliveryPublic… with "attempts_log": [AttemptPublic…]]}
    GET /v1/receivers/{name}/attempts?limit=&cursor=
        → {"items": [attempt with breach_id, kind…], "next_cursor"}   newest first
    POST /v1/breaches/{id}/ack  {"by", "comment"}  → AckPublic (first ack wins; 404)
    GET  /v1/ack/{token}   → a confirmation page (GET never acknowledges)
    POST /v1/ack/{token}   (form or JSON by/comment, optional) → AckPublic; 403 bad/expired
    POST /v1/silences {match, starts_at?, ends_at | duration, created_by, comment}
    GET  /v1/silences?active=true          DELETE /v1/silences/{id} (expires it)
    GET /v1/agreements/{name}/report?period=&at=&format=   (services.notifier.reports.api)
    GET /healthz, /readyz, /metrics   (shared.runtime.ops_router)

Scopes (``shared.http.auth``): reading breaches, attempts and silences needs
``breaches:read``; acknowledging and creating or expiring silences ``breaches:ack``
(the key's name is recorded as the ``actor``); reports ``reports:read``. The signed
ack link needs no key: the link is its own credential (actor ``ack link``).

Errors are ``application/problem+json`` (RFC 9457). Times are epoch milliseconds.
"""

from __future__ import annotations

import html
import logging
import re
import urllib.parse
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Path, Query, Request
from fastapi.responses import HTMLResponse
from prometheus_client import CollectorRegistry
from pydantic import BaseModel, Field, ValidationError, computed_field
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.responses import Response

from services.notifier import acks
from services.notifier.acklink import AckLinks, BadToken
from services.notifier.metrics import NotifierMetrics
from services.notifier.outbox import dt_to_ms
from services.notifier.reports.api import reports_router
from shared.apikeys.scopes import Scope
from shared.http import problems
from shared.http.app import service_app
from shared.http.auth import Authenticator, BreachesAcker, require
from shared.http.problems import HttpProblem
from shared.models import (
    BreachEventRecord,
    BreachRecord,
    Delivery,
    DeliveryAttempt,
    NotifierSilence,
)
from shared.runtime import ReadinessCheck
from shared.timeutil import Clock, parse_duration_ms, rfc3339_or_none, to_rfc3339, wall_clock_ms

log = logging.getLogger(__name__)

PROBLEM = problems.PROBLEM_MEDIA_TYPE
MAX_LIMIT = 500
MAX_MS = 2**63 - 1
#: The actor recorded for an acknowledgement through a signed link (no API key).
ACK_LINK_ACTOR = "ack link"


class Problem(HttpProblem):
    """An RFC 9457 problem to answer with (``type: about:blank``)."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(problems.Problem(status, None, title, detail, None))
        self.status = status
        self.title = title
        self.detail = detail


def problem_response(status: int, title: str, detail: str, **extra: Any) -> Response:
    return problems.response(problems.Problem(status, None, title, detail, None, extra))


class BreachPublic(BaseModel):
    id: str
    agreement: str
    objective_id: str
    service: str
    group: dict[str, str]
    severity: str
    status: str
    opened_at: int
    resolved_at: int | None
    updated_at: int
    last_event: dict[str, Any]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def opened_at_rfc3339(self) -> str:
        return to_rfc3339(self.opened_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def resolved_at_rfc3339(self) -> str | None:
        return rfc3339_or_none(self.resolved_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def updated_at_rfc3339(self) -> str:
        return to_rfc3339(self.updated_at)


class EventPublic(BaseModel):
    kind: str
    at: int
    recorded_at: int
    payload: dict[str, Any]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def at_rfc3339(self) -> str:
        return to_rfc3339(self.at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def recorded_at_rfc3339(self) -> str:
        return to_rfc3339(self.recorded_at)


class AttemptPublic(BaseModel):
    attempt: int
    outcome: str
    status_code: int | None
    latency_ms: int
    error: str | None
    attempted_at: int

    @computed_field  # type: ignore[prop-decorator]
    @property
    def attempted_at_rfc3339(self) -> str:
        return to_rfc3339(self.attempted_at)


class DeliveryPublic(BaseModel):
    id: int
    receiver: str
    kind: str
    at: int
    status: str
    attempts: int
    next_attempt_at: int
    last_error: str | None
    created_at: int
    delivered_at: int | None
    attempts_log: list[AttemptPublic]

    @computed_field  # type: ignore[prop-decorator]
    @property
    def created_at_rfc3339(self) -> str:
        return to_rfc3339(self.created_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def delivered_at_rfc3339(self) -> str | None:
        return rfc3339_or_none(self.delivered_at)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def next_attempt_at_rfc3339(self) -> str:
        return to_rfc3339(self.next_attempt_at)


class BreachPage(BaseModel):
    items: list[BreachPublic]
    next_cursor: str | None


class BreachDetail(BaseModel):
    breach: BreachPublic
    events: list[EventPublic]
    deliveries: list[DeliveryPublic]


def _breach_public(row: BreachRecord) -> BreachPublic:
    return BreachPublic(
        id=row.id,
        agreement=row.agreement,
        objective_id=row.objective_id,
        service=row.service,
        group=row.group,
        severity=row.severity,
        status=row.status,
        opened_at=row.opened_at,
        resolved_at=row.resolved_at,
        updated_at=dt_to_ms(row.updated_at),
        last_event=row.last_event,
    )


#: ``<opened_at>:<breach id>``: what the schema accepts is a position to page from
#: (opened_at within 64 bits, no NUL: PostgreSQL takes neither)
CURSOR_PATTERN = r"^[0-9]{1,18}:[^\x00]+$"
#: a delivery attempt's id (64-bit)
ATTEMPT_CURSOR_PATTERN = r"^[0-9]{1,18}$"
#: ids and names as stored: PostgreSQL text holds no NUL
TEXT_PATTERN = r"^[^\x00]*$"
Text = Annotated[str, Path(pattern=TEXT_PATTERN)]

#: a string of a body that is stored (pydantic already refuses a lone surrogate)
Stored = Annotated[str, Field(pattern=TEXT_PATTERN)]


def encode_cursor(opened_at: int, breach_id: str) -> str:
    return f"{opened_at}:{breach_id}"


def decode_cursor(cursor: str) -> tuple[int, str]:
    """The position of a cursor of :data:`CURSOR_PATTERN`; 400 for anything else."""
    if not re.fullmatch(CURSOR_PATTERN, cursor):
        raise Problem(400, "Bad Request", "cursor: not a cursor this API returned")
    opened_at, breach_id = cursor.split(":", 1)
    return int(opened_at), breach_id


def breaches_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    """``/v1/breaches`` over the given session factory."""
    router = APIRouter(
        prefix="/v1/breaches", tags=["breaches"], dependencies=[require(Scope.BREACHES_READ)]
    )

    @router.get("", response_model=BreachPage, responses=problems.problem_responses([400, 422]))
    async def list_breaches(
        status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
        agreement: Annotated[str | None, Query(max_length=253, pattern=TEXT_PATTERN)] = None,
        service: Annotated[str | None, Query(max_length=64, pattern=TEXT_PATTERN)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        # the pattern documented, checked by decode_cursor (a bad cursor is a 400)
        cursor: Annotated[
            str | None, Query(max_length=512, json_schema_extra={"pattern": CURSOR_PATTERN})
        ] = None,
    ) -> BreachPage:
        stmt = select(BreachRecord)
        if status is not None:
            stmt = stmt.where(BreachRecord.status == status)
        if agreement is not None:
            stmt = stmt.where(BreachRecord.agreement == agreement)
        if service is not None:
            stmt = stmt.where(BreachRecord.service == service)
        if cursor is not None:
            opened_at, breach_id = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    BreachRecord.opened_at < opened_at,
                    and_(BreachRecord.opened_at == opened_at, BreachRecord.id < breach_id),
                )
            )
        stmt = stmt.order_by(BreachRecord.opened_at.desc(), BreachRecord.id.desc()).limit(limit + 1)
        async with sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        more = len(rows) > limit
        rows = rows[:limit]
        next_cursor = encode_cursor(rows[-1].opened_at, rows[-1].id) if more else None
        return BreachPage(items=[_breach_public(r) for r in rows], next_cursor=next_cursor)

    @router.get(
        "/{breach_id}",
        response_model=BreachDetail,
        responses=problems.problem_responses([404, 422]),
    )
    async def get_breach(breach_id: Text) -> BreachDetail:
        async with sessions() as session:
            row = await session.get(BreachRecord, breach_id)
            if row is None:
                raise Problem(404, "Not Found", f"no breach with id {breach_id!r}")
            events = (
                await session.execute(
                    select(BreachEventRecord)
                    .where(BreachEventRecord.breach_id == breach_id)
                    .order_by(BreachEventRecord.at, BreachEventRecord.recorded_at)
                )
            ).scalars()
            deliveries = list(
                (
                    await session.execute(
                        select(Delivery)
                        .where(Delivery.breach_id == breach_id)
                        .order_by(Delivery.at, Delivery.id)
                    )
                ).scalars()
            )
            attempts = (
                await session.execute(
                    select(DeliveryAttempt)
                    .where(DeliveryAttempt.delivery_id.in_([d.id for d in deliveries]))
                    .order_by(DeliveryAttempt.delivery_id, DeliveryAttempt.attempt)
                )
            ).scalars()
            by_delivery: dict[int, list[AttemptPublic]] = {}
            for a in attempts:
                by_delivery.setdefault(a.delivery_id, []).append(
                    AttemptPublic(
                        attempt=a.attempt,
                        outcome=a.outcome,
                        status_code=a.status_code,
                        latency_ms=a.latency_ms,
                        error=a.error,
                        attempted_at=dt_to_ms(a.attempted_at),
                    )
                )
            return BreachDetail(
                breach=_breach_public(row),
                events=[
                    EventPublic(
                        kind=e.kind, at=e.at, recorded_at=dt_to_ms(e.recorded_at), payload=e.payload
                    )
                    for e in events
                ],
                deliveries=[
                    DeliveryPublic(
                        id=d.id,
                        receiver=d.receiver,
                        kind=d.kind,
                        at=d.at,
                        status=d.status,
                        attempts=d.attempts,
                        next_attempt_at=dt_to_ms(d.next_attempt_at),
                        last_error=d.last_error,
                        created_at=dt_to_ms(d.created_at),
                        delivered_at=None if d.delivered_at is None else dt_to_ms(d.delivered_at),
                        attempts_log=by_delivery.get(d.id, []),
                    )
                    for d in deliveries
                ],
            )

    return router


class AckIn(BaseModel):
    by: Annotated[Stored, Field(min_length=1, max_length=256)]
    comment: Annotated[Stored | None, Field(max_length=2048)] = None


#: the signed link's form (or the same fields as JSON), both optional
ACK_LINK_BODY = {
    "required": False,
    "content": {
        "application/x-www-form-urlencoded": {"schema": {"$ref": "#/components/schemas/AckIn"}},
        "application/json": {"schema": {"$ref": "#/components/schemas/AckIn"}},
    },
}


class AckPublic(BaseModel):
    breach_id: str
    acked_by: str
    comment: str | None
    at: int
    already: bool


class ReceiverAttempt(BaseModel):
    id: int
    delivery_id: int
    breach_id: str
    kind: str
    attempt: int
    outcome: str
    status_code: int | None
    latency_ms: int
    error: str | None
    attempted_at: int


class ReceiverAttemptPage(BaseModel):
    items: list[ReceiverAttempt]
    next_cursor: str | None


#: epoch milliseconds as stored (BIGINT)
Millis = Annotated[int, Field(ge=0, le=MAX_MS)]


class SilenceIn(BaseModel):
    match: dict[Stored, Stored] = Field(default_factory=dict)
    starts_at: Millis | None = None
    ends_at: Millis | None = None
    duration: str | None = None
    created_by: Annotated[Stored, Field(min_length=1, max_length=256)]
    comment: Annotated[Stored | None, Field(max_length=2048)] = None


class SilencePublic(BaseModel):
    id: str
    match: dict[str, str]
    starts_at: int
    ends_at: int
    created_by: str
    comment: str | None
    created_at: int
    active: bool


@dataclass(frozen=True)
class Lifecycle:
    """What the ack and silence endpoints need beyond the database."""

    clock: Clock
    links: AckLinks
    on_enqueued: Callable[[], None] = lambda: None
    metrics: NotifierMetrics | None = None


def receivers_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    """``GET /v1/receivers/{name}/attempts``: a receiver's delivery attempts, newest first."""
    router = APIRouter(
        prefix="/v1/receivers", tags=["receivers"], dependencies=[require(Scope.BREACHES_READ)]
    )

    @router.get(
        "/{name}/attempts",
        response_model=ReceiverAttemptPage,
        responses=problems.problem_responses([422]),
    )
    async def receiver_attempts(
        name: Text,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(pattern=ATTEMPT_CURSOR_PATTERN)] = None,
    ) -> ReceiverAttemptPage:
        stmt = (
            select(DeliveryAttempt, Delivery.breach_id, Delivery.kind)
            .join(Delivery, Delivery.id == DeliveryAttempt.delivery_id)
            .where(Delivery.receiver == name)
        )
        if cursor is not None:
            stmt = stmt.where(DeliveryAttempt.id < int(cursor))
        stmt = stmt.order_by(DeliveryAttempt.id.desc()).limit(limit + 1)
        async with sessions() as session:
            rows = (await session.execute(stmt)).all()
        more = len(rows) > limit
        items = [
            ReceiverAttempt(
                id=a.id,
                delivery_id=a.delivery_id,
                breach_id=breach_id,
                kind=kind,
                attempt=a.attempt,
                outcome=a.outcome,
                status_code=a.status_code,
                latency_ms=a.latency_ms,
                error=a.error,
                attempted_at=dt_to_ms(a.attempted_at),
            )
            for a, breach_id, kind in rows[:limit]
        ]
        return ReceiverAttemptPage(items=items, next_cursor=str(items[-1].id) if more else None)

    return router


def lifecycle_router(sessions: async_sessionmaker[AsyncSession], life: Lifecycle) -> APIRouter:
    """Acknowledgements (API and signed link) and silences."""
    router = APIRouter(tags=["lifecycle"])

    async def ack(breach_id: str, by: str, comment: str | None, via: str, actor: str) -> AckPublic:
        async with sessions() as session, session.begin():
            outcome = await acks.acknowledge(
                session, breach_id, by, comment, via, life.clock(), actor
            )
        if not outcome.found:
            raise Problem(404, "Not Found", f"no breach with id {breach_id!r}")
        if outcome.created:
            if life.metrics is not None:
                life.metrics.acks.labels(via).inc()
            if outcome.deliveries:
                life.on_enqueued()
            log.info(
                "breach acknowledged",
                extra={"breach_id": breach_id, "via": via, "actor": actor},
            )
        assert outcome.acked_by is not None and outcome.at is not None
        return AckPublic(
            breach_id=breach_id,
            acked_by=outcome.acked_by,
            comment=outcome.comment,
            at=outcome.at,
            already=not outcome.created,
        )

    @router.post(
        "/v1/breaches/{breach_id}/ack",
        response_model=AckPublic,
        # 400: a body that is not JSON (the framework's answer)
        responses=problems.problem_responses([400, 404, 422]),
    )
    async def ack_by_api(breach_id: Text, body: AckIn, caller: BreachesAcker) -> AckPublic:
        return await ack(breach_id, body.by, body.comment, "api", caller.name)

    def verified(token: str) -> str:
        try:
            return life.links.verify(token, life.clock())
        except BadToken as exc:
            raise Problem(403, "Forbidden", f"ack link: {exc}") from None

    # the link is its own credential: 403 for a bad, forged or expired one
    @router.get(
        "/v1/ack/{token}",
        response_class=HTMLResponse,
        responses=problems.problem_responses([403, 422]),
    )
    async def ack_page(token: str) -> HTMLResponse:
        # GET never acknowledges: chat unfurlers and mail scanners fetch links.
        breach_id = verified(token)
        page = (
            "<!doctype html><title>Acknowledge breach</title>"
            f"<p>Acknowledge breach <code>{html.escape(breach_id)}</code>?</p>"
            f'<form method="post"><label>Your name <input name="by" maxlength="256"></label> '
            '<label>Comment <input name="comment" maxlength="2048"></label> '
            '<button type="submit">Acknowledge</button></form>'
        )
        return HTMLResponse(page)

    @router.post(
        "/v1/ack/{token}",
        response_model=AckPublic,
        responses=problems.problem_responses([403, 404, 422]),
        openapi_extra={"requestBody": ACK_LINK_BODY},
    )
    async def ack_by_link(token: str, request: Request) -> AckPublic:
        breach_id = verified(token)
        by, comment = "ack link", None
        content_type = request.headers.get("content-type", "")
        raw = await request.body()
        if content_type.startswith("application/x-www-form-urlencoded"):
            form = urllib.parse.parse_qs(raw.decode(errors="replace"))
            by = (form.get("by", [""])[0].strip() or by)[:256]
            comment = (form.get("comment", [""])[0].strip() or None) if "comment" in form else None
        elif content_type.startswith("application/json") and raw:
            try:
                body = AckIn.model_validate_json(raw)
            except ValidationError as exc:
                raise Problem(422, "Unprocessable Content", str(exc.errors()[0]["msg"])) from None
            by, comment = body.by, body.comment
        return await ack(breach_id, by, comment, "link", ACK_LINK_ACTOR)

    def silence_public(row: NotifierSilence, now: int) -> SilencePublic:
        return SilencePublic(
            id=row.id,
            match=dict(row.matchers),
            starts_at=row.starts_at,
            ends_at=row.ends_at,
            created_by=row.created_by,
            comment=row.comment,
            created_at=row.created_at,
            active=row.starts_at <= now < row.ends_at,
        )

    @router.post(
        "/v1/silences",
        response_model=SilencePublic,
        status_code=201,
        responses=problems.problem_responses([400, 422]),
    )
    async def create_silence(body: SilenceIn, caller: BreachesAcker) -> SilencePublic:
        now = life.clock()
        starts = body.starts_at if body.starts_at is not None else now
        if (body.ends_at is None) == (body.duration is None):
            raise Problem(422, "Unprocessable Content", "give exactly one of ends_at, duration")
        try:
            ends = (
                body.ends_at
                if body.ends_at is not None
                else starts + parse_duration_ms(body.duration or "")
            )
        except ValueError as exc:
            raise Problem(422, "Unprocessable Content", f"duration: {exc}") from None
        if ends <= starts:
            raise Problem(422, "Unprocessable Content", "ends_at must be after starts_at")
        if ends > MAX_MS:
            raise Problem(422, "Unprocessable Content", f"duration: ends after {MAX_MS} ms")
        row = NotifierSilence(
            id=str(uuid.uuid4()),
            matchers=body.match,
            starts_at=starts,
            ends_at=ends,
            created_by=body.created_by,
            comment=body.comment,
            created_at=now,
            actor=caller.name,
        )
        async with sessions() as session, session.begin():
            session.add(row)
        return silence_public(row, now)

    @router.get(
        "/v1/silences",
        response_model=list[SilencePublic],
        responses=problems.problem_responses([422]),
        dependencies=[require(Scope.BREACHES_READ)],
    )
    async def list_silences(
        active: Annotated[bool | None, Query()] = None,
    ) -> list[SilencePublic]:
        now = life.clock()
        stmt = select(NotifierSilence).order_by(NotifierSilence.created_at.desc()).limit(MAX_LIMIT)
        if active is True:
            stmt = stmt.where(NotifierSilence.starts_at <= now, NotifierSilence.ends_at > now)
        async with sessions() as session:
            rows = (await session.execute(stmt)).scalars().all()
        return [silence_public(r, now) for r in rows]

    @router.delete(
        "/v1/silences/{silence_id}",
        response_model=SilencePublic,
        responses=problems.problem_responses([404, 422]),
    )
    async def expire_silence(silence_id: Text, caller: BreachesAcker) -> SilencePublic:
        now = life.clock()
        async with sessions() as session, session.begin():
            row = await session.get(NotifierSilence, silence_id, with_for_update=True)
            if row is None:
                raise Problem(404, "Not Found", f"no silence with id {silence_id!r}")
            if row.ends_at > now:
                # Expired now; one not started yet never becomes active.
                row.ends_at = max(now, row.starts_at)
                log.info("silence expired", extra={"silence_id": silence_id, "actor": caller.name})
        return silence_public(row, now)

    return router


def create_app(
    sessions: async_sessionmaker[AsyncSession],
    registry: CollectorRegistry,
    checks: dict[str, ReadinessCheck],
    lifecycle: Lifecycle | None = None,
    *,
    auth: Authenticator,
    metrics_auth: bool = False,
) -> FastAPI:
    """The notifier's FastAPI app (``shared.http.app.service_app``); nothing global,
    everything passed in."""
    app = service_app(
        "slawatch notifier",
        summary="Routing, delivery, escalation, acks and reports of breaches.",
        auth=auth,
        registry=registry,
        checks=checks,
        metrics_auth=metrics_auth,
        version="1",
    )
    app.include_router(breaches_router(sessions))
    app.include_router(receivers_router(sessions))
    life = lifecycle or Lifecycle(wall_clock_ms, AckLinks(b"", "http://127.0.0.1"))
    app.include_router(lifecycle_router(sessions, life))
    app.include_router(reports_router(sessions, life.clock))
    return app
