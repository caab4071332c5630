"""Request body bytes + Content-Type → decoded items, or a whole-request problem.

One parser per media type (:data:`PARSERS`). Accepted:

``application/json``
    One JSON object, or an array of objects. A body that is not JSON, or whose top
    level is neither, is a 400; an array element that is not an object is a
    per-item rejection (``not_an_object``).
``application/x-ndjson``, ``application/jsonl``
    One JSON object per line (``\\n`` or ``\\r\\n``); blank lines are skipped. A bad
    line is a per-item rejection (``invalid_json`` / ``not_an_object``) with its
    0-based line number as ``index``; the other lines go on.

``application/cloudevents+json``, ``application/cloudevents-batch+json``
    CloudEvents 1.0 structured and batch mode (``services.ingest.cloudevents``;
    binary mode is chosen by ``ce-*`` headers, not by the media type).

Any other media type is a 415 (so is a Content-Encoding other than ``identity`` or
``gzip``, checked by :func:`check_encoding`). More than ``max_items`` items is a 413; the
byte limit is enforced while the body is read (see ``services.ingest.body``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping

import orjson

from services.ingest import cloudevents, problems
from services.ingest.body import GZIP_CODINGS, IDENTITY_CODINGS
from services.ingest.items import FieldError, Item, Rejected, as_item
from services.ingest.problems import Problem

Parser = Callable[[bytes, int], list[Item] | Problem]
"""``(body, max_items) -> items | problem``."""

JSON = "application/json"
NDJSON_TYPES = ("application/x-ndjson", "application/jsonl")


def media_type(content_type: str | None) -> str:
    """``"Application/JSON; charset=utf-8"`` → ``"application/json"``; ``None`` → ``""``."""
    if not content_type:
        return ""
    return content_type.split(";", 1)[0].strip().lower()


def parse_json(body: bytes, max_items: int) -> list[Item] | Problem:
    """One object or an array of objects."""
    if not body.strip():
        return problems.empty_body()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problems.invalid_body(f"body is not valid JSON: {exc}")
    if isinstance(document, dict):
        return [as_item(0, document)]
    if not isinstance(document, list):
        return problems.invalid_body("body must be a JSON object or an array of objects")
    if not document:
        return problems.empty_body()
    if len(document) > max_items:
        return problems.too_many_items(max_items)
    return [as_item(index, value) for index, value in enumerate(document)]


def parse_ndjson(body: bytes, max_items: int) -> list[Item] | Problem:
    """One object per line; the item index is the 0-based line number."""
    items: list[Item] = []
    for line_no, line in enumerate(body.split(b"\n")):
        if not line.strip():
            continue
        if len(items) == max_items:
            return problems.too_many_items(max_items)
        items.append(decode_line(line_no, line))
    if not items:
        return problems.empty_body()
    return items


def decode_line(index: int, line: bytes) -> Item:
    """One NDJSON line (or one raw Kafka record) as an item."""
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        return Rejected(index, "invalid_json", (FieldError(None, f"not valid JSON: {exc}"),))
    return as_item(index, value)


PARSERS: Mapping[str, Parser] = {
    JSON: parse_json,
    **dict.fromkeys(NDJSON_TYPES, parse_ndjson),
    cloudevents.STRUCTURED: cloudevents.parse_structured,
    cloudevents.BATCH: cloudevents.parse_batch,
}


def parser_for(content_type: str | None) -> Parser | Problem:
    """The parser for a Content-Type header, or a 415 naming what is accepted."""
    kind = media_type(content_type)
    parser = PARSERS.get(kind)
    if parser is not None:
        return parser
    accepted = ", ".join(PARSERS)
    shown = repr(kind) if kind else "none"
    return problems.unsupported_media_type(
        f"Content-Type {shown} is not accepted; use one of: {accepted}"
    )


def content_coding(content_encoding: str | None) -> str:
    """The normalized Content-Encoding header value (``""`` when absent)."""
    return (content_encoding or "").strip().lower()


def check_encoding(content_encoding: str | None) -> Problem | None:
    """identity or gzip; any other coding would not parse (415, RFC 9110)."""
    coding = content_coding(content_encoding)
    if coding in IDENTITY_CODINGS or coding in GZIP_CODINGS:
        return None
    return problems.unsupported_media_type(f"Content-Encoding {coding!r} is not accepted")


def parse_body(body: bytes, content_type: str | None, max_items: int) -> list[Item] | Problem:
    """Pick the parser for ``content_type`` and run it."""
    parser = parser_for(content_type)
    if isinstance(parser, Problem):
        return parser
    return parser(body, max_items)
