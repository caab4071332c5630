"""Alert webhooks → canonical items: Prometheus Alertmanager and Grafana alerting.

Both send one JSON object with an ``alerts`` array (Grafana's unified alerting uses
Alertmanager's shape plus ``values``). Each alert becomes one event:

===============  ==========================================================
canonical        from the alert
===============  ==========================================================
``type``         ``alert.firing`` / ``alert.resolved`` (the alert's ``status``)
``outcome``      ``bad`` when firing, ``good`` when resolved
``service``      the first of the ``service_labels`` the alert has (query
                 parameter ``service_label``, default ``service``)
``id``           ``<fingerprint>@<startsAt ms>`` plus ``/resolved`` for a
                 resolved alert: Alertmanager re-sends a firing alert on every
                 ``repeat_interval``, and those copies share the id (deduplicated),
                 while its resolution is a different event
``time``         ``startsAt`` when firing, ``endsAt`` when resolved
``entity``       the fingerprint (one alert instance)
``attributes``   ``alertname`` and the other labels (sorted by name; at most
                 :data:`shared.schemas.MAX_ATTRIBUTES`, values cut to 256 chars)
``value``        Grafana only: the single number in ``values``, if exactly one
``source``       ``alertmanager`` / ``grafana``
===============  ==========================================================

A missing fingerprint (older Grafana) is derived from the sorted labels. An alert
without any of the service labels is rejected per item (counted, and named in the
response); the others go on.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping, Sequence
from typing import Any, Literal

import orjson

from services.ingest import problems
from services.ingest.items import Decoded, FieldError, Item, Rejected, describe_json
from services.ingest.problems import Problem
from shared.schemas import MAX_ATTRIBUTE_KEY, MAX_ATTRIBUTE_VALUE, MAX_ATTRIBUTES
from shared.timeutil import parse_time_ms

Flavour = Literal["alertmanager", "grafana"]
DEFAULT_SERVICE_LABELS = ("service",)


def service_labels(query_value: str | None) -> tuple[str, ...]:
    """``?service_label=service,job`` → ``("service", "job")``; tried in order."""
    if not query_value:
        return DEFAULT_SERVICE_LABELS
    labels = tuple(part.strip() for part in query_value.split(",") if part.strip())
    return labels or DEFAULT_SERVICE_LABELS


def parse_webhook(
    body: bytes, flavour: Flavour, labels: Sequence[str], max_items: int
) -> list[Item] | Problem:
    """The webhook body → one item per alert, in ``alerts`` order."""
    if not body.strip():
        return problems.empty_body()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problems.invalid_body(f"body is not valid JSON: {exc}")
    if not isinstance(document, dict) or not isinstance(document.get("alerts"), list):
        return problems.invalid_body(f"a {flavour} webhook is an object with an 'alerts' array")
    alerts = document["alerts"]
    if not alerts:
        return problems.empty_body()
    if len(alerts) > max_items:
        return problems.too_many_items(max_items)
    return [alert_item(i, a, flavour, labels) for i, a in enumerate(alerts)]


def alert_item(index: int, alert: object, flavour: Flavour, labels: Sequence[str]) -> Item:
    """One alert as a canonical item, or why not."""
    if not isinstance(alert, dict):
        message = f"expected a JSON object, got {describe_json(alert)}"
        return Rejected(index, "not_an_object", (FieldError(None, message),))
    errors: list[FieldError] = []
    status = alert.get("status")
    if status not in ("firing", "resolved"):
        errors.append(FieldError("status", f"must be 'firing' or 'resolved', got {status!r}"))
    alert_labels = alert.get("labels")
    if not isinstance(alert_labels, dict) or not all(
        isinstance(v, str) for v in alert_labels.values()
    ):
        errors.append(FieldError("labels", "must be an object of strings"))
        alert_labels = {}
    service_label = next((name for name in labels if alert_labels.get(name)), None)
    if service_label is None:
        wanted = ", ".join(repr(name) for name in labels)
        errors.append(FieldError("labels", f"no service label ({wanted}) on the alert"))
    starts = _time(alert, "startsAt", errors)
    ends = _time(alert, "endsAt", errors) if status == "resolved" else None
    if errors or service_label is None or starts is None:
        return Rejected(index, "invalid_event", tuple(errors))
    fingerprint = alert.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        fingerprint = _fingerprint(alert_labels)
    event_id = f"{fingerprint}@{starts}" + ("/resolved" if status == "resolved" else "")
    event: dict[str, Any] = {
        "id": event_id,
        "service": alert_labels[service_label],
        "type": f"alert.{status}",
        "time": ends if ends is not None else starts,
        "outcome": "bad" if status == "firing" else "good",
        "entity": fingerprint,
        "attributes": _attributes(alert_labels, service_label),
        "source": flavour,
    }
    if flavour == "grafana":
        value = _single_value(alert.get("values"))
        if value is not None:
            event["value"] = value
    return Decoded(index, event)


def _time(alert: Mapping[str, Any], field: str, errors: list[FieldError]) -> int | None:
    raw = alert.get(field)
    try:
        return parse_time_ms(raw)
    except ValueError as exc:
        errors.append(FieldError(field, str(exc)))
        return None


def _fingerprint(labels: Mapping[str, str]) -> str:
    material = "\x1f".join(f"{k}\x1e{labels[k]}" for k in sorted(labels))
    return hashlib.sha256(material.encode()).hexdigest()[:16]


def _attributes(labels: Mapping[str, str], service_label: str) -> dict[str, str]:
    names = sorted(k for k in labels if k != service_label and 0 < len(k) <= MAX_ATTRIBUTE_KEY)
    if "alertname" in names:  # the most useful label goes first, so it survives the cut
        names.remove("alertname")
        names.insert(0, "alertname")
    return {k: labels[k][:MAX_ATTRIBUTE_VALUE] for k in names[:MAX_ATTRIBUTES]}


def _single_value(values: object) -> float | None:
    if not isinstance(values, dict) or len(values) != 1:
        return None
    (value,) = values.values()
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)
