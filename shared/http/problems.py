"""RFC 9457 problem details (``application/problem+json``): one builder for every
service.

A problem has ``type`` (``urn:slawatch:problem:<slug>``, or ``about:blank`` when no
slug is given), ``title``, ``status``, ``detail``, and optionally an ``errors`` list
(entries name the item ``index``, the ``field`` and a ``message``) and members of
its own (``invalid-params``). Code raises :class:`HttpProblem` or returns
:func:`response`; :func:`install_handlers` answers framework errors (404, 405,
request validation) the same way.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

PROBLEM_MEDIA_TYPE = "application/problem+json"
PROBLEM_TYPE_PREFIX = "urn:slawatch:problem:"

_TITLES = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    405: "Method Not Allowed",
    409: "Conflict",
    413: "Content Too Large",
    415: "Unsupported Media Type",
    422: "Unprocessable Content",
    429: "Too Many Requests",
    503: "Service Unavailable",
}


@dataclass(frozen=True)
class ProblemError:
    """One entry of a problem's ``errors`` list."""

    index: int | None
    field: str | None
    message: str
    #: the document's kind and name (configuration API), in the body only when known
    kind: str | None = None
    name: str | None = None


@dataclass(frozen=True)
class Problem:
    """A problem, independent of the web framework."""

    status: int
    slug: str | None
    title: str
    detail: str
    errors: tuple[ProblemError, ...] | None = ()
    extra: Mapping[str, Any] = field(default_factory=dict)

    @property
    def type(self) -> str:
        return PROBLEM_TYPE_PREFIX + self.slug if self.slug else "about:blank"

    def body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": self.type,
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if self.errors is not None:
            body["errors"] = [_error_body(e) for e in self.errors]
        body.update(self.extra)
        return body


def _error_body(e: ProblemError) -> dict[str, Any]:
    out: dict[str, Any] = {"index": e.index, "field": e.field, "message": e.message}
    out.update((k, v) for k, v in (("kind", e.kind), ("name", e.name)) if v is not None)
    return out


class HttpProblem(Exception):
    """Raised anywhere in a request to answer with ``problem`` (and ``headers``)."""

    def __init__(self, problem: Problem, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(problem.detail)
        self.problem = problem
        self.headers = dict(headers or {})


def response(problem: Problem, headers: Mapping[str, str] | None = None) -> Response:
    """The HTTP response for a problem."""
    return Response(
        orjson.dumps(problem.body()),
        status_code=problem.status,
        media_type=PROBLEM_MEDIA_TYPE,
        headers=dict(headers) if headers else None,
    )


def title_of(status: int) -> str:
    return _TITLES.get(status, "Error")


class ProblemErrorModel(BaseModel):
    """OpenAPI shape of one entry of ``errors``."""

    index: int | None = Field(description="item index (array index or NDJSON line); null: body")
    field: str | None = Field(description="dotted field path; null: the item as a whole")
    message: str
    kind: str | None = Field(
        default=None, description="definitions: the document's kind, when known"
    )
    name: str | None = Field(
        default=None, description="definitions: the document's metadata.name, when known"
    )


class ProblemModel(BaseModel):
    """OpenAPI shape of an ``application/problem+json`` body."""

    type: str = Field(examples=["urn:slawatch:problem:invalid-events"])
    title: str
    status: int
    detail: str
    errors: list[ProblemErrorModel] = Field(default_factory=list)


def problem_responses(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for problems with these statuses."""
    return {
        status: {
            "description": title_of(status),
            "model": ProblemModel,
            "content": {
                PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemModel"}}
            },
        }
        for status in statuses
    }


def install_handlers(app: FastAPI) -> None:
    """:class:`HttpProblem`, HTTP errors of the framework (404, 405, ...) and request
    validation errors are all answered as problems."""

    async def on_problem(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HttpProblem)
        return response(exc.problem, exc.headers)

    async def on_http(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, HTTPException)
        problem = Problem(exc.status_code, None, title_of(exc.status_code), str(exc.detail))
        return response(problem, exc.headers)

    async def on_invalid(_request: Request, exc: Exception) -> Response:
        assert isinstance(exc, RequestValidationError)
        # index null: the request as a whole (ProblemErrorModel requires the member)
        errors = [
            {"index": None, "field": ".".join(str(p) for p in e["loc"]), "message": e["msg"]}
            for e in exc.errors()
        ]
        detail = "; ".join(f"{e['field']}: {e['message']}" for e in errors)
        problem = Problem(422, None, title_of(422), detail, None, {"errors": errors})
        return response(problem)

    app.add_exception_handler(HttpProblem, on_problem)
    app.add_exception_handler(HTTPException, on_http)
    app.add_exception_handler(RequestValidationError, on_invalid)
