"""Request bodies of the configuration API: read within the limit, decoded safely.

* :func:`read` stops at :data:`~services.ingest.config.problems.MAX_BODY_BYTES`: the
  declared ``Content-Length`` first, then while the chunks arrive, so a 30 MB body
  costs at most the limit (413) and is never buffered whole; a content coding is 415
  (the configuration API takes none).
* :func:`decode` reads JSON (orjson, then at most
  :data:`shared.definitions.yamlsafe.MAX_DEPTH` levels) or YAML through the one
  bounded loader (:mod:`shared.definitions.yamlsafe`: depth and alias expansion
  bounded); anything undecodable is a 400 ``invalid-body`` with the reason.
"""

from __future__ import annotations

from typing import Any

import orjson
import yaml
from fastapi import Request, Response

from services.ingest.body import declared_too_large, read_limited
from services.ingest.config.problems import MAX_BODY_BYTES, problem
from services.ingest.exceptions import BodyTooLargeError
from shared.definitions import yamlsafe

YAML_TYPES = ("application/yaml", "application/x-yaml", "text/yaml", "text/x-yaml")
#: Enough of a decoder's message to locate the problem; the rest is the client's text.
MAX_DETAIL_CHARS = 1_000


def too_large() -> Response:
    return problem(
        413, "body-too-large", "Body too large", f"at most {MAX_BODY_BYTES} bytes per request"
    )


def _undecodable(detail: str) -> Response:
    return problem(400, "invalid-body", "Body cannot be decoded", detail[:MAX_DETAIL_CHARS])


async def read(request: Request) -> bytes | Response:
    """The raw body, or the 413 / 415 problem."""
    coding = (request.headers.get("content-encoding") or "identity").strip().lower()
    if coding != "identity":
        return problem(
            415,
            "unsupported-media-type",
            "Unsupported media type",
            f"Content-Encoding {coding[:40]!r} is not accepted here",
        )
    if declared_too_large(request.headers.get("content-length"), MAX_BODY_BYTES):
        return too_large()
    try:
        return await read_limited(request.stream(), MAX_BODY_BYTES)
    except BodyTooLargeError:
        return too_large()


async def decode(request: Request) -> Any | Response:
    """The body as a decoded JSON / YAML value, or the 400 / 413 / 415 problem."""
    raw = await read(request)
    if isinstance(raw, Response):
        return raw
    media = (request.headers.get("content-type") or "application/json").split(";")[0].strip()
    media = media.lower()
    try:
        if media in YAML_TYPES:
            return yamlsafe.load_one(raw)
        if media == "application/json" or media.endswith("+json"):
            document = orjson.loads(raw)
            if yamlsafe.too_deep(document):
                return _undecodable(f"nesting deeper than {yamlsafe.MAX_DEPTH} levels")
            return document
    except (yaml.YAMLError, orjson.JSONDecodeError, UnicodeDecodeError) as exc:
        return _undecodable(str(exc))
    return problem(
        415,
        "unsupported-media-type",
        "Unsupported media type",
        f"send application/json or application/yaml, not {media[:80]!r}",
    )


def text(raw: bytes) -> str | Response:
    """A multi-document YAML body as text (UTF-8), or the 400 problem."""
    try:
        return raw.decode()
    except UnicodeDecodeError as exc:
        return _undecodable(str(exc))
