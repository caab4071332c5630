"""HTTP API of the notifier: read-only breach history plus the ops endpoints.

    GET /v1/breaches?status=&agreement=&service=&limit=&cursor=
        → {"items": [BreachPublic…], "next_cursor": str | null}
        newest first by (opened_at, id); ``cursor`` is the opaque ``next_cursor``
    GET /v1/breaches/{id}
        → {"breach": BreachPublic, "events": [EventPublic…],
           "deliveries": [DeliveryPublic… with "attempts_log": [AttemptPublic…]]}
    GET /healthz, /readyz, /metrics   (shared.runtime.ops_router)

Errors are ``application/problem+json`` (RFC 9457). Times are epoch milliseconds.
"""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any, Literal

from fastapi import APIRouter, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException

from services.notifier.outbox import dt_to_ms
from shared.models import BreachEventRecord, BreachRecord, Delivery, DeliveryAttempt
from shared.runtime import ReadinessCheck, ops_router

PROBLEM = "application/problem+json"
MAX_LIMIT = 500


class Problem(Exception):
    """An RFC 9457 problem to answer with."""

    def __init__(self, status: int, title: str, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.title = title
        self.detail = detail


def problem_response(status: int, title: str, detail: str, **extra: Any) -> JSONResponse:
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail, **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


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


class EventPublic(BaseModel):
    kind: str
    at: int
    recorded_at: int
    payload: dict[str, Any]


class AttemptPublic(BaseModel):
    attempt: int
    outcome: str
    status_code: int | None
    latency_ms: int
    error: str | None
    attempted_at: int


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


def encode_cursor(opened_at: int, breach_id: str) -> str:
    return base64.urlsafe_b64encode(f"{opened_at}:{breach_id}".encode()).decode().rstrip("=")


def decode_cursor(cursor: str) -> tuple[int, str]:
    try:
        text = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        opened_at, breach_id = text.split(":", 1)
        return int(opened_at), breach_id
    except (ValueError, binascii.Error, UnicodeDecodeError):
        raise Problem(400, "Bad Request", "cursor: not a cursor this API returned") from None


def breaches_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    """``/v1/breaches`` over the given session factory."""
    router = APIRouter(prefix="/v1/breaches", tags=["breaches"])

    @router.get("", response_model=BreachPage)
    async def list_breaches(
        status: Annotated[Literal["open", "resolved"] | None, Query()] = None,
        agreement: Annotated[str | None, Query(max_length=253)] = None,
        service: Annotated[str | None, Query(max_length=64)] = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 50,
        cursor: Annotated[str | None, Query(max_length=512)] = None,
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

    @router.get("/{breach_id}", response_model=BreachDetail)
    async def get_breach(breach_id: str) -> BreachDetail:
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


def create_app(
    sessions: async_sessionmaker[AsyncSession],
    registry: CollectorRegistry,
    checks: dict[str, ReadinessCheck],
) -> FastAPI:
    """The notifier's FastAPI app; nothing global, everything passed in."""
    app = FastAPI(title="slawatch notifier", version="1")
    app.include_router(ops_router(registry, checks))
    app.include_router(breaches_router(sessions))

    @app.exception_handler(Problem)
    async def on_problem(_request: Request, exc: Problem) -> JSONResponse:
        return problem_response(exc.status, exc.title, exc.detail)

    @app.exception_handler(HTTPException)
    async def on_http(_request: Request, exc: HTTPException) -> JSONResponse:
        title = "Not Found" if exc.status_code == 404 else "Error"
        return problem_response(exc.status_code, title, str(exc.detail))

    @app.exception_handler(RequestValidationError)
    async def on_invalid(_request: Request, exc: RequestValidationError) -> JSONResponse:
        errors = [
            {"field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]} for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        return problem_response(422, "Unprocessable Content", detail, errors=errors)

    return app
