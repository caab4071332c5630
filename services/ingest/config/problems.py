"""``application/problem+json`` (RFC 9457) answers of the configuration API.

Same shape as ingest's: ``type`` (``urn:slawatch:problem:<slug>``), ``title``,
``status``, ``detail`` and ``errors`` entries naming the document ``index`` (in a
multi-document body) with its ``kind`` and ``name`` when known, the ``field``
(dotted path) and a ``message``.

=====  ===========================  ===============================================
400    ``invalid-body``             not JSON / YAML, or not a mapping
404    ``not-found``                no such resource or document
409    ``conflict``                 create of an existing name; delete of a document
                                    others refer to
412    ``precondition-failed``      ``If-Match`` is not the current ETag
413    ``body-too-large``           more than :data:`MAX_BODY_BYTES`
415    ``unsupported-media-type``   neither JSON nor YAML
422    ``invalid-definition``       the document is invalid; ``errors`` names fields
=====  ===========================  ===============================================
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.responses import Response

from shared.definitions.load import DefinitionError
from shared.http.problems import (
    PROBLEM_MEDIA_TYPE,
    Problem,
    ProblemError,
    problem_responses,
    response,
)

__all__ = ["MAX_BODY_BYTES", "PROBLEM_MEDIA_TYPE", "documented", "invalid", "problem"]
MAX_BODY_BYTES = 1_048_576

#: the table above, for the OpenAPI description of each answer
MEANINGS = {
    400: "Body not JSON / YAML or not a mapping; a malformed filter (invalid-body, invalid-query)",
    404: "No such resource or document (not-found)",
    409: "Create of an existing name; delete of a document others refer to (conflict)",
    412: "If-Match is not the current ETag (precondition-failed)",
    415: "Neither JSON nor YAML, or a Content-Encoding (unsupported-media-type)",
    422: "The document or a parameter is invalid; errors names the fields",
}


def documented(statuses: Iterable[int]) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the problems a route answers with."""
    answers = problem_responses(statuses)
    for status, answer in answers.items():
        answer["description"] = MEANINGS.get(int(status), answer["description"])
    return answers


def problem(
    status: int,
    slug: str,
    title: str,
    detail: str,
    errors: Iterable[DefinitionError] = (),
    headers: dict[str, str] | None = None,
) -> Response:
    listed = tuple(ProblemError(e.index, e.path or None, e.message, e.kind, e.name) for e in errors)
    return response(Problem(status, slug, title, detail, listed), headers)


def invalid(errors: list[DefinitionError]) -> Response:
    first = errors[0]
    where = f" at {first.path}" if first.path else ""
    return problem(
        422,
        "invalid-definition",
        "Invalid definition",
        f"{len(errors)} error(s); first{where}: {first.message}",
        errors,
    )
