"""RFC 9457 problem details (``application/problem+json``) for rejected requests.

Every problem has ``type`` (a ``urn:slawatch:problem:<slug>`` URI; the slug is also
the metric reason), ``title``, ``status``, ``detail`` and an ``errors`` list whose
entries name the item ``index`` (``null`` for the body as a whole), the ``field``
(a dotted path, ``null`` for the whole item) and a ``message``.

=====  =========================  =================================================
400    ``invalid-body``           body is not JSON (or not valid gzip), or not the shape
                                  the endpoint takes
400    ``empty-body``             no item at all
413    ``body-too-large``         more than ``max_body_bytes``
413    ``too-many-items``         more than ``max_batch_items``
415    ``unsupported-media-type`` Content-Type or Content-Encoding not accepted
422    ``invalid-events``         every item was rejected; ``errors`` has them all
422    ``invalid-query``          a query parameter is not valid (``errors`` names it)
503    ``unavailable``            no valid item was acknowledged by the broker
404    ``not-found``              no such resource (e.g. an unknown source name)
503    ``overloaded``             too many events in flight, or the broker failed just
                                  now (fail fast); ``Retry-After`` says when to retry
503    ``shutting-down``          the instance is stopping (graceful drain); retry
                                  after ``Retry-After``, here or on another instance
=====  =========================  =================================================
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any, Literal

from starlette.responses import Response

from services.ingest.items import Rejected
from shared.http import problems as shared_problems
from shared.http.problems import PROBLEM_MEDIA_TYPE, ProblemError, ProblemErrorModel, ProblemModel

__all__ = ["PROBLEM_MEDIA_TYPE", "Problem", "ProblemError", "ProblemErrorModel", "ProblemModel"]

RequestReason = Literal[
    "invalid_body",
    "empty_body",
    "body_too_large",
    "too_many_items",
    "unsupported_media_type",
    "invalid_events",
    "unavailable",
    "overloaded",
    "shutting_down",
    "not_found",
    "invalid_query",
]
"""Why a whole request was rejected; a bounded set, used as a metric label."""

REQUEST_REASONS: tuple[RequestReason, ...] = (
    "invalid_body",
    "empty_body",
    "body_too_large",
    "too_many_items",
    "unsupported_media_type",
    "invalid_events",
    "unavailable",
    "overloaded",
    "shutting_down",
    "not_found",
    "invalid_query",
)


@dataclass(frozen=True)
class Problem:
    """A whole-request rejection, independent of any web framework."""

    status: int
    reason: RequestReason
    title: str
    detail: str
    errors: tuple[ProblemError, ...] = ()

    @property
    def type(self) -> str:
        return "urn:slawatch:problem:" + self.reason.replace("_", "-")

    def shared(self) -> shared_problems.Problem:
        slug = self.reason.replace("_", "-")
        return shared_problems.Problem(self.status, slug, self.title, self.detail, self.errors)

    def body(self) -> dict[str, Any]:
        return self.shared().body()


def response(problem: Problem, headers: dict[str, str] | None = None) -> Response:
    """The HTTP response for a problem (``shared.http.problems``)."""
    return shared_problems.response(problem.shared(), headers)


def errors_of(rejections: Iterable[Rejected]) -> tuple[ProblemError, ...]:
    """Flatten per-item rejections into problem errors, in item order."""
    return tuple(
        ProblemError(r.index, e.field, e.message)
        for r in sorted(rejections, key=lambda r: r.index)
        for e in r.errors
    )


def invalid_body(detail: str) -> Problem:
    return Problem(400, "invalid_body", "Request body is not valid", detail)


def empty_body() -> Problem:
    return Problem(400, "empty_body", "Request body holds no event", "send at least one event")


def body_too_large(limit: int) -> Problem:
    return Problem(
        413, "body_too_large", "Request body too large", f"the limit is {limit} bytes per request"
    )


def too_many_items(limit: int) -> Problem:
    return Problem(
        413, "too_many_items", "Too many events", f"the limit is {limit} events per request"
    )


def unsupported_media_type(detail: str) -> Problem:
    return Problem(415, "unsupported_media_type", "Unsupported media type", detail)


def invalid_events(rejections: Iterable[Rejected]) -> Problem:
    errors = errors_of(rejections)
    return Problem(
        422,
        "invalid_events",
        "No valid event",
        "every event in the request was rejected; see errors",
        errors,
    )


def unavailable(rejections: Iterable[Rejected]) -> Problem:
    return Problem(
        503,
        "unavailable",
        "Events not stored",
        "the broker did not acknowledge any event; retry later with the same ids",
        errors_of(rejections),
    )


def overloaded(detail: str) -> Problem:
    return Problem(503, "overloaded", "Try again shortly", detail)


def shutting_down() -> Problem:
    return Problem(
        503,
        "shutting_down",
        "Shutting down",
        "this instance is stopping and accepts no new events; retry with the same ids",
    )


def invalid_query(parameter: str, message: str) -> Problem:
    return Problem(
        422,
        "invalid_query",
        "Invalid query parameter",
        f"{parameter}: {message}",
        (ProblemError(None, parameter, message),),
    )


def not_found(detail: str) -> Problem:
    return Problem(404, "not_found", "Not found", detail)
