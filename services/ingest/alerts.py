"""Alert webhooks → canonical items: Prometheus Alertmanager and Grafana alerting.

Both send one JSON object with an ``alerts`` array (Grafana's unified alerting uses
Alertmanager's shape plus ``values``). Each alert becomes one event:

===============  ==========================================================
canonical        from the alert
===============  ==========================================================
``type``         ``alert.firing`` / ``alert.resolved`` (the alert's ``status``)
``outcome``      ``bad`` when firing, ``good`` when resolved
``service``      the first of the ``service_labels`` the alert has (query
                 parameter ``service_label``, default ``service``), else the
                 URL's default service (query parameter ``service``)
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

A missing fingerprint (older Grafana) is derived from the sorted labels. The
integration URL may name a default service (``?service=checkout``), used for an
alert that has none of the service labels.

An alert that cannot be mapped never disappears quietly: it is listed in the
response (index, ``alertname``, a reason of :data:`ALERT_REASONS` and the errors),
logged as a warning with its name, and counted in
``slawatch_ingest_alerts_unmapped_total{flavour, reason}``; the other alerts of the
payload go on (202 while any alert is accepted, else 422 with every alert's errors).
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, Field, TypeAdapter, ValidationError

from services.ingest import problems, results
from services.ingest.items import Decoded, FieldError, Item, Rejected, describe_json
from services.ingest.problems import Problem, ProblemError
from shared.schemas import MAX_ATTRIBUTE_KEY, MAX_ATTRIBUTE_VALUE, MAX_ATTRIBUTES, Slug
from shared.timeutil import parse_time_ms

log = logging.getLogger(__name__)

Flavour = Literal["alertmanager", "grafana"]
FLAVOURS: tuple[Flavour, ...] = ("alertmanager", "grafana")
DEFAULT_SERVICE_LABELS = ("service",)

AlertReason = Literal[
    "not_an_object",
    "invalid_labels",
    "no_service",
    "invalid_service",
    "invalid_status",
    "invalid_time",
    "invalid_event",
]
"""Why an alert was not mapped to an event; a bounded set, used as a metric label.
When an alert has several problems, the first of this order is its reason."""

ALERT_REASONS: tuple[AlertReason, ...] = (
    "not_an_object",
    "invalid_labels",
    "no_service",
    "invalid_service",
    "invalid_status",
    "invalid_time",
    "invalid_event",
)

#: The event schema's own rule for a service name, so both doors agree.
_SERVICE_NAME: TypeAdapter[str] = TypeAdapter(Slug)
SERVICE_PATTERN: str = _SERVICE_NAME.json_schema()["pattern"]
SERVICE_RULE = (
    "a service name is 1 to 63 characters: lowercase letters, digits, '.', '_' and '-', "
    "starting with a letter or digit"
)


def service_labels(query_value: str | None) -> tuple[str, ...]:
    """``?service_label=service,job`` → ``("service", "job")``; tried in order."""
    if not query_value:
        return DEFAULT_SERVICE_LABELS
    labels = tuple(part.strip() for part in query_value.split(",") if part.strip())
    return labels or DEFAULT_SERVICE_LABELS


def is_service_name(value: str) -> bool:
    try:
        _SERVICE_NAME.validate_python(value)
    except ValidationError:
        return False
    return True


def default_service(query_value: str | None) -> str | Problem | None:
    """``?service=`` checked like an event's ``service``: the name, none, or a 422."""
    if query_value is None:
        return None
    if is_service_name(query_value):
        return query_value
    return problems.invalid_query("service", f"{SERVICE_RULE}; got {_shown(query_value)}")


@dataclass(frozen=True)
class Integration:
    """How alerts are mapped, from the integration URL's query parameters."""

    flavour: Flavour
    labels: tuple[str, ...] = DEFAULT_SERVICE_LABELS
    default_service: str | None = None


@dataclass(frozen=True)
class AlertItem:
    """One alert: the item for the intake pipeline, its name, and the mapping's verdict."""

    item: Item
    alertname: str | None
    reason: AlertReason | None = None


def parse_webhook(
    body: bytes, integration: Integration, max_items: int
) -> list[AlertItem] | Problem:
    """The webhook body → one item per alert, in ``alerts`` order."""
    if not body.strip():
        return problems.empty_body()
    try:
        document = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        return problems.invalid_body(f"body is not valid JSON: {exc}")
    flavour = integration.flavour
    if not isinstance(document, dict) or not isinstance(document.get("alerts"), list):
        return problems.invalid_body(f"a {flavour} webhook is an object with an 'alerts' array")
    alerts = document["alerts"]
    if not alerts:
        return problems.empty_body()
    if len(alerts) > max_items:
        return problems.too_many_items(max_items)
    return [map_alert(i, a, integration) for i, a in enumerate(alerts)]


def map_alert(index: int, alert: object, integration: Integration) -> AlertItem:
    """One alert as a canonical item, or why not (pure)."""
    if not isinstance(alert, dict):
        message = f"expected a JSON object, got {describe_json(alert)}"
        rejected = Rejected(index, "not_an_object", (FieldError(None, message),))
        return AlertItem(rejected, None, "not_an_object")
    reasons: list[AlertReason] = []
    errors: list[FieldError] = []

    def refuse(reason: AlertReason, error: FieldError) -> None:
        reasons.append(reason)
        errors.append(error)

    raw_labels = alert.get("labels")
    name = _alertname(raw_labels)
    service_label: str | None = None
    service: str | None = None
    if isinstance(raw_labels, dict) and all(isinstance(v, str) for v in raw_labels.values()):
        alert_labels: dict[str, str] = raw_labels
        service_label = next(
            (label for label in integration.labels if alert_labels.get(label)), None
        )
        service = alert_labels[service_label] if service_label else integration.default_service
        if service is None:
            wanted = ", ".join(repr(label) for label in integration.labels)
            message = f"no service label ({wanted}) on the alert, and the URL sets no ?service="
            refuse("no_service", FieldError("labels", message))
        elif not is_service_name(service):
            message = f"label {service_label!r} is {_shown(service)}: {SERVICE_RULE}"
            refuse("invalid_service", FieldError(f"labels.{service_label}", message))
    else:
        # which service was meant is unknown, so that is not reported on its own
        refuse("invalid_labels", FieldError("labels", "must be an object of strings"))
        alert_labels = {}
    status = alert.get("status")
    if status not in ("firing", "resolved"):
        message = f"must be 'firing' or 'resolved', got {_shown(status)}"
        refuse("invalid_status", FieldError("status", message))
    starts = _time(alert, "startsAt", errors)
    ends = _time(alert, "endsAt", errors) if status == "resolved" else None
    if len(errors) > len(reasons):
        reasons.append("invalid_time")
    if errors or service is None or starts is None:
        reason = min(reasons, key=ALERT_REASONS.index)
        return AlertItem(Rejected(index, "invalid_event", tuple(errors)), name, reason)
    fingerprint = alert.get("fingerprint")
    if not isinstance(fingerprint, str) or not fingerprint:
        fingerprint = _fingerprint(alert_labels)
    event_id = f"{fingerprint}@{starts}" + ("/resolved" if status == "resolved" else "")
    event: dict[str, Any] = {
        "id": event_id,
        "service": service,
        "type": f"alert.{status}",
        "time": ends if ends is not None else starts,
        "outcome": "bad" if status == "firing" else "good",
        "entity": fingerprint,
        "attributes": _attributes(alert_labels, service_label),
        "source": integration.flavour,
    }
    if integration.flavour == "grafana":
        value = _single_value(alert.get("values"))
        if value is not None:
            event["value"] = value
    return AlertItem(Decoded(index, event), name)


def reason_of(rejected: Rejected) -> AlertReason:
    """The alert reason of a rejection by the canonical event (after the integration)."""
    if rejected.reason in ("time_unit", "future") or any(
        e.field == "time" for e in rejected.errors
    ):
        return "invalid_time"
    return "invalid_event"


@dataclass(frozen=True)
class Unmapped:
    """An alert that did not become an event, as reported, logged and counted."""

    index: int
    alertname: str | None
    reason: AlertReason
    errors: tuple[FieldError, ...]


CountUnmapped = Callable[[Flavour, AlertReason], None]


@dataclass
class Delivery:
    """One webhook request: parses its alerts, then reports those that were not mapped.

    ``parse`` is the intake pipeline's parser; ``report`` runs once the pipeline
    decided the answer, with every rejected item (by the mapping or by the canonical
    event), and puts the alert names and reasons into that answer."""

    integration: Integration
    count: CountUnmapped
    alerts: dict[int, AlertItem] = field(default_factory=dict)

    def parse(self, body: bytes, max_items: int) -> list[Item] | Problem:
        parsed = parse_webhook(body, self.integration, max_items)
        if isinstance(parsed, Problem):
            return parsed
        self.alerts = {a.item.index: a for a in parsed}
        return [a.item for a in parsed]

    def unmapped(self, rejected: Sequence[Rejected]) -> list[Unmapped]:
        """The rejected items that are alerts not mapped (not publish failures)."""
        out: list[Unmapped] = []
        for rejection in sorted(rejected, key=lambda r: r.index):
            if rejection.reason == "publish_failed":
                continue
            alert = self.alerts.get(rejection.index)
            name = alert.alertname if alert else None
            reason = alert.reason if alert and alert.reason else reason_of(rejection)
            out.append(Unmapped(rejection.index, name, reason, rejection.errors))
        return out

    def report(
        self, rejected: Sequence[Rejected], decision: Problem | dict[str, Any]
    ) -> Problem | dict[str, Any]:
        unmapped = self.unmapped(rejected)
        flavour = self.integration.flavour
        for alert in unmapped:
            self.count(flavour, alert.reason)
            log.warning(
                "%s alert %r (index %d) not mapped to an event: %s: %s",
                flavour,
                alert.alertname,
                alert.index,
                alert.reason,
                "; ".join(e.describe() for e in alert.errors),
                extra={
                    "flavour": flavour,
                    "alertname": alert.alertname,
                    "index": alert.index,
                    "reason": alert.reason,
                },
            )
        if isinstance(decision, Problem):
            return self._named_problem(decision)
        return self._named_body(decision, unmapped)

    def _named_body(self, body: dict[str, Any], unmapped: list[Unmapped]) -> dict[str, Any]:
        reasons = {u.index: u.reason for u in unmapped}
        named = []
        for result in body["results"]:
            alert = self.alerts.get(result["index"])
            result = result | {"alertname": alert.alertname if alert else None}
            if result["status"] == "rejected":
                result["reason"] = reasons.get(result["index"], "invalid_event")
            named.append(result)
        return body | {"results": named}

    def _named_problem(self, problem: Problem) -> Problem:
        errors = tuple(self._named_error(e) for e in problem.errors)
        if problem.reason == "invalid_events":
            detail = (
                f"none of the {len(self.alerts)} alerts could be mapped to an event; see errors"
            )
            return dataclasses.replace(problem, detail=detail, errors=errors)
        return dataclasses.replace(problem, errors=errors)

    def _named_error(self, error: ProblemError) -> ProblemError:
        alert = self.alerts.get(error.index) if error.index is not None else None
        if alert is None or alert.alertname is None:
            return error
        return dataclasses.replace(error, message=f"alert {alert.alertname!r}: {error.message}")


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


def _attributes(labels: Mapping[str, str], service_label: str | None) -> dict[str, str]:
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


def _alertname(labels: object) -> str | None:
    name = labels.get("alertname") if isinstance(labels, dict) else None
    return name[:MAX_ATTRIBUTE_VALUE] if isinstance(name, str) and name else None


def _shown(value: object) -> str:
    """A value echoed in a message, cut so that a huge label cannot bloat the answer."""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


# -- OpenAPI shapes of the 202 body ------------------------------------------------------

_ALERTNAME = Field(description="the alert's alertname label; null when it has none")


class AcceptedAlert(results.AcceptedItem):
    """An alert stored as an event (acknowledged by the broker)."""

    alertname: str | None = _ALERTNAME


class RejectedAlert(results.RejectedItem):
    """An alert that could not be mapped to an event; logged and counted as well."""

    alertname: str | None = _ALERTNAME
    reason: AlertReason = Field(
        description="why, as in slawatch_ingest_alerts_unmapped_total{reason}: no_service "
        "(none of the service labels and no ?service=), invalid_service (the label's "
        "value is not a service name), invalid_labels, invalid_status, invalid_time, "
        "not_an_object, invalid_event (another field out of the event's ranges)"
    )


class FailedAlert(results.FailedItem):
    """A mapped alert the broker did not acknowledge; the sender should retry."""

    alertname: str | None = _ALERTNAME


class WebhookResponse(BaseModel):
    """OpenAPI shape of a webhook's 202 body: counts, then one result per alert."""

    accepted: int = Field(description="alerts stored as events (duplicates included)")
    rejected: int = Field(description="alerts that could not be mapped; see results")
    failed: int = Field(description="mapped alerts the broker did not acknowledge")
    results: list[
        Annotated[AcceptedAlert | RejectedAlert | FailedAlert, Field(discriminator="status")]
    ]
