"""``GET /v1/agreements/{name}/report``: an agreement's period report.

    ?period=2026-11 | 2026-W48 | 2026-Q4 | 2026-11-15   the period containing it
    ?at=2026-11-15T10:00:00Z                            same, by an instant
    (neither: the period containing now)
    ?format=json | csv | html    (else ``Accept: text/csv`` gives CSV; default JSON)

A period closed two minutes ago or more is served as its report of record (built once,
then stored: :mod:`services.notifier.reports.record`); the header
``x-slawatch-report`` says ``of-record`` or ``live``.

Errors are ``application/problem+json``: 404 for an unknown agreement, 400 naming the
parameter for a bad period, an ``at`` given with ``period``, or an unknown format.
It needs an API key with ``reports:read``.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.reports import render
from services.notifier.reports.exceptions import BadPeriod, UnknownAgreement
from services.notifier.reports.record import rendered
from shared.apikeys.scopes import Scope
from shared.http import problems
from shared.http.auth import require
from shared.http.problems import Problem
from shared.timeutil import Clock

#: PostgreSQL text holds no NUL
NAME_TEXT = r"^[^\x00]*$"


def _problem(status: int, title: str, detail: str, param: str | None = None) -> Response:
    extra = {"invalid-params": [{"name": param, "reason": detail}]} if param is not None else {}
    return problems.response(Problem(status, None, title, detail, None, extra))


def _format(requested: str | None, accept: str) -> str | None:
    if requested is not None:
        return requested if requested in render.FORMATS else None
    return "csv" if "text/csv" in accept else "json"


def reports_router(sessions: async_sessionmaker[AsyncSession], clock: Clock) -> APIRouter:
    router = APIRouter(prefix="/v1/agreements", tags=["reports"])

    @router.get(
        "/{name}/report",
        response_model=None,
        responses={
            200: {
                "description": "The report: JSON, CSV or HTML (``format``, or Accept: text/csv)",
                "content": {"text/csv": {"schema": {"type": "string"}}, "text/html": {}},
            },
            **problems.problem_responses([400, 404, 422]),
        },
        dependencies=[require(Scope.REPORTS_READ)],
    )
    async def agreement_report(
        name: Annotated[str, Path(pattern=NAME_TEXT)],
        request: Request,
        period: str | None = None,
        at: str | None = None,
        # documented as the enum; another value is still the 400 naming the parameter
        fmt: Annotated[
            str | None, Query(alias="format", json_schema_extra={"enum": list(render.FORMATS)})
        ] = None,
    ) -> Response:
        chosen = _format(fmt, request.headers.get("accept", ""))
        if chosen is None:
            detail = f"format: {fmt!r} is not one of {', '.join(render.FORMATS)}"
            return _problem(400, "Bad Request", detail, "format")
        if period is not None and at is not None:
            return _problem(400, "Bad Request", "at: give 'period' or 'at', not both", "at")
        param = "at" if at is not None else "period"
        try:
            async with sessions() as session:
                answer = await rendered(session, name, period=period or at, now=clock(), fmt=chosen)
        except UnknownAgreement as exc:
            return _problem(404, "Not Found", str(exc))
        except BadPeriod as exc:
            return _problem(400, "Bad Request", f"{param}: {exc}", param)
        headers = {"x-slawatch-report": "of-record" if answer.of_record else "live"}
        if answer.filename is not None:
            headers["content-disposition"] = f'attachment; filename="{answer.filename}"'
        return Response(answer.body, media_type=answer.media_type, headers=headers)

    return router
