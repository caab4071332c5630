"""CloudEvents 1.0 (HTTP protocol binding, JSON event format) → canonical items.

Three modes, all on ``POST /v1/events``:

* structured: ``Content-Type: application/cloudevents+json``, one event as JSON;
* batch: ``Content-Type: application/cloudevents-batch+json``, a JSON array of events;
* binary: the context attributes in ``ce-*`` headers (percent-encoded, as the HTTP
  binding says) and the event's ``data`` as the body, whose Content-Type is the
  ``datacontenttype`` (JSON only). A ``ce-specversion`` header selects this mode.

Mapping onto the canonical event (see docs/ingest.md):

=====================  ================================================
CloudEvents            canonical
=====================  ================================================
``id``                 ``id``
``source``             ``source``
``type``               ``type``
``time`` (optional)    ``time`` (default: time of receipt)
``subject``            ``entity`` when ``data`` has no ``entity``
``service`` extension  ``service`` when ``data`` has no ``service``
``data`` (JSON object) the other canonical fields: ``service``, ``outcome``,
                       ``value``, ``entity``, ``attributes``
=====================  ================================================

``specversion`` must be ``1.0``; ``id``, ``source`` and ``type`` are required. Other
extension attributes are ignored, as the specification allows. ``data_base64`` and
non-JSON ``datacontenttype`` are rejected per item. ``data`` may not repeat
``id``/``source``/``type``/``time`` (the context attributes own them) and may not
hold fields the canonical event does not know.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

import orjson

from services.ingest import problems
from services.ingest.items import Decoded, FieldError, Item, Rejected, as_item, describe_json
from services.ingest.problems import Problem

STRUCTURED = "application/cloudevents+json"
BATCH = "application/cloudevents-batch+json"
SPECVERSION = "1.0"
CONTEXT_OWNED = ("id", "source", "type", "time")
DATA_FIELDS = ("service", "outcome", "value", "entity", "attributes")
HEADER_PREFIX = "ce-"


def is_binary(headers: Mapping[str, str]) -> bool:
    """Binary mode is chosen by the presence of ``ce-specversion``."""
    return "ce-specversion" in headers


def is_json_type(content_type: str | None) -> bool:
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind in ("", "application/json", "text/json") or kind.endswith("+json")


def _reject(index: int, field: str | None, message: str) -> Rejected:
    return Rejected(index, "invalid_event", (FieldError(field, message),))


def to_canonical(index: int, event: Mapping[str, Any]) -> Item:
    """One CloudEvent (attributes + ``data``) as a canonical item, or why not."""
    errors: list[FieldError] = []
    version = event.get("specversion")
    if version != SPECVERSION:
        errors.append(FieldError("specversion", f"must be {SPECVERSION!r}, got {version!r}"))
    for name in ("id", "source", "type"):
        value = event.get(name)
        if not isinstance(value, str) or not value:
            errors.append(FieldError(name, "required CloudEvents attribute (non-empty string)"))
    if "data_base64" in event:
        errors.append(FieldError("data_base64", "binary data is not accepted; send JSON data"))
    if not is_json_type(event.get("datacontenttype")):
        errors.append(FieldError("datacontenttype", "only JSON data is accepted"))
    data = event.get("data")
    if data is None:
        data = {}
    if not isinstance(data, dict):
        errors.append(FieldError("data", f"must be a JSON object, got {describe_json(data)}"))
        data = {}
    for key in data:
        if key in CONTEXT_OWNED:
            errors.append(FieldError(f"data.{key}", "set by the CloudEvents attribute instead"))
        elif key not in DATA_FIELDS:
            errors.append(
                FieldError(f"data.{key}"[:200], f"unknown field; data may hold {DATA_FIELDS}")
            )
    if errors:
        return Rejected(index, "invalid_event", tuple(errors))
    canonical: dict[str, Any] = {k: event[k] for k in ("id", "source", "type")}
    if event.get("time") is not None:
        canonical["time"] = event["time"]
    if event.get("subject") is not None:
        canonical["entity"] = event["subject"]
    if event.get("service") is not None:
        canonical["service"] = event["service"]
    canonical.update(data)
    return Decoded(index, canonical)


def parse_structured(body: bytes, max_items: int) -> list[Item] | Problem:
    """``application/cloudevents+json``: exactly one event."""
    document = _load(body)
    if isinstance(document, Problem):
        return document
    if not isinstance(document, dict):
        return problems.invalid_body("a structured CloudEvent must be a JSON object")
    return [to_canonical(0, document)]


def parse_batch(body: bytes, max_items: int) -> list[Item] | Problem:
    """``application/cloudevents-batch+json``: an array of events (index = array index)."""
    document = _load(body)
    if isinstance(document, Problem):
        return document
    if not isinstance(document, list):
        return problems.invalid_body("a CloudEvents batch must be a JSON array")
    if not document:
        return problems.empty_body()
    if len(document) > max_items:
        return problems.too_many_items(max_items)
    items: list[Item] = []
    for index, value in enumerate(document):
        item = as_item(index, value)
        items.append(to_canonical(index, item.data) if isinstance(item, Decoded) else item)
    return items


def parse_binary(headers: Mapping[str, str], body: bytes) -> list[Item] | Problem:
    """Binary mode: attributes from ``ce-*`` headers, ``data`` from the body."""
    event: dict[str, Any] = {
        name[len(HEADER_PREFIX) :]: unquote(value)
        for name, value in headers.items()
        if name.lower().startswith(HEADER_PREFIX)
    }
    content_type = headers.get("content-type")
    if not is_json_type(content_type):
        return problems.unsupported_media_type(
            f"binary-mode CloudEvents data must be JSON, got Content-Type {content_type!r}"
        )
    if body.strip():
        data = _load(body)
        if isinstance(data, Problem):
            return data
        event["data"] = data
    return [to_canonical(0, event)]


def _load(body: bytes) -> Any:
    if not body.strip():
        return problems.empty_body()
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problems.invalid_body(f"body is not valid JSON: {exc}")
