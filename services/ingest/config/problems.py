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

from starlette.responses import Response

from shared.definitions.load import DefinitionError
from shared.http.problems import PROBLEM_MEDIA_TYPE, Problem, ProblemError, response

__all__ = ["MAX_BODY_BYTES", "PROBLEM_MEDIA_TYPE", "invalid", "problem"]
MAX_BODY_BYTES = 1_048_576


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
