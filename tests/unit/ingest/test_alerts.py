"""Alert webhooks: the mapping of one alert (table and property), the default service
of an integration URL, and what the HTTP app answers, logs and counts for alerts that
cannot be mapped (fake publisher; the real broker: tests/integration/ingest/
test_alerts_integration.py)."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from typing import Any

import orjson
import pytest
from hypothesis import given
from hypothesis import strategies as st
from prometheus_client import CollectorRegistry

from services.ingest import alerts
from services.ingest.alerts import AlertReason, Integration, map_alert
from services.ingest.api import IngestDeps, create_app
from services.ingest.items import Decoded, Rejected
from services.ingest.metrics import IngestMetrics
from services.ingest.problems import Problem
from shared.schemas import Event
from shared.topics import Topics
from tests.keys import api_client, static_auth
from tests.unit.ingest.test_api import FakePublisher, Harness

NOW = 1_800_000_000_000
JSON = {"content-type": "application/json"}
UNMAPPED = "slawatch_ingest_alerts_unmapped_total"

ALERT: dict[str, Any] = {
    "status": "firing",
    "labels": {"alertname": "HighErrorRate", "service": "checkout", "severity": "page"},
    "startsAt": "2026-11-28T13:00:00Z",
    "endsAt": "0001-01-01T00:00:00Z",
    "fingerprint": "a1b2c3d4e5f60718",
}
BY_JOB = Integration("alertmanager", ("service", "job"))
DEFAULTED = Integration("alertmanager", ("service",), "payments")


def labels(**values: object) -> dict[str, Any]:
    return ALERT | {"labels": values}


# -- the mapping of one alert -------------------------------------------------------------

MAPPED: list[tuple[str, object, Integration, str, dict[str, str]]] = [
    # (case, alert, integration, service, attributes)
    (
        "service label",
        ALERT,
        BY_JOB,
        "checkout",
        {"alertname": "HighErrorRate", "severity": "page"},
    ),
    (
        "second label",
        labels(alertname="Down", job="payments"),
        BY_JOB,
        "payments",
        {"alertname": "Down"},
    ),
    (
        "default service",
        labels(alertname="Down", team="blue"),
        DEFAULTED,
        "payments",
        {"alertname": "Down", "team": "blue"},
    ),
    (
        "label wins over the default",
        ALERT,
        DEFAULTED,
        "checkout",
        {"alertname": "HighErrorRate", "severity": "page"},
    ),
    (
        "empty label value: the default",
        labels(alertname="Down", service=""),
        DEFAULTED,
        "payments",
        {"alertname": "Down", "service": ""},
    ),
]


@pytest.mark.parametrize(
    ("alert", "integration", "service", "attributes"),
    [case[1:] for case in MAPPED],
    ids=[case[0] for case in MAPPED],
)
def test_mapped(
    alert: object, integration: Integration, service: str, attributes: dict[str, str]
) -> None:
    mapped = map_alert(3, alert, integration)
    assert isinstance(mapped.item, Decoded), mapped
    assert (mapped.item.index, mapped.reason) == (3, None)
    assert mapped.alertname == attributes["alertname"]
    assert mapped.item.data["service"] == service
    assert mapped.item.data["attributes"] == attributes


UNMAPPED_CASES: list[tuple[str, object, Integration, str | None, AlertReason, list[str | None]]] = [
    # (case, alert, integration, alertname, reason, error fields)
    ("no service label", labels(alertname="Down"), BY_JOB, "Down", "no_service", ["labels"]),
    (
        "no label, no default",
        labels(alertname="Down", team="blue"),
        Integration("grafana"),
        "Down",
        "no_service",
        ["labels"],
    ),
    ("not an object", "x", BY_JOB, None, "not_an_object", [None]),
    (
        "labels not an object",
        ALERT | {"labels": ["a"]},
        DEFAULTED,
        None,
        "invalid_labels",
        ["labels"],
    ),
    (
        "a label value not text",
        labels(alertname="Down", service="checkout", replicas=3),
        BY_JOB,
        "Down",
        "invalid_labels",
        ["labels"],
    ),
    (
        "service value not a service name",
        labels(alertname="Down", service="Checkout Team"),
        DEFAULTED,  # a label that is there is not replaced by the default
        "Down",
        "invalid_service",
        ["labels.service"],
    ),
    (
        "second label value not a service name",
        labels(alertname="Down", job="node/exporter"),
        BY_JOB,
        "Down",
        "invalid_service",
        ["labels.job"],
    ),
    (
        "status",
        ALERT | {"status": "pending"},
        BY_JOB,
        "HighErrorRate",
        "invalid_status",
        ["status"],
    ),
    (
        "startsAt",
        ALERT | {"startsAt": "yesterday"},
        BY_JOB,
        "HighErrorRate",
        "invalid_time",
        ["startsAt"],
    ),
    (
        "resolved without endsAt",
        ALERT | {"status": "resolved", "endsAt": None},
        BY_JOB,
        "HighErrorRate",
        "invalid_time",
        ["endsAt"],
    ),
    (
        "several: the first reason of the order",
        labels(alertname="Down") | {"status": "pending", "startsAt": "soon"},
        BY_JOB,
        "Down",
        "no_service",
        ["labels", "status", "startsAt"],
    ),
]


@pytest.mark.parametrize(
    ("alert", "integration", "alertname", "reason", "fields"),
    [case[1:] for case in UNMAPPED_CASES],
    ids=[case[0] for case in UNMAPPED_CASES],
)
def test_unmapped(
    alert: object,
    integration: Integration,
    alertname: str | None,
    reason: AlertReason,
    fields: list[str | None],
) -> None:
    mapped = map_alert(1, alert, integration)
    assert isinstance(mapped.item, Rejected), mapped
    assert (mapped.item.index, mapped.alertname, mapped.reason) == (1, alertname, reason)
    assert [e.field for e in mapped.item.errors] == fields
    assert all(e.message for e in mapped.item.errors)


def test_messages_say_what_to_do() -> None:
    (no_service,) = _errors(labels(alertname="Down"), BY_JOB)
    assert (
        no_service
        == "no service label ('service', 'job') on the alert, and the URL sets no ?service="
    )
    (bad_name,) = _errors(labels(alertname="Down", service="Checkout Team"), BY_JOB)
    assert bad_name.startswith("label 'service' is 'Checkout Team': a service name is 1 to 63")
    assert "[a-z" not in bad_name  # words, not the regex


def _errors(alert: object, integration: Integration) -> list[str]:
    item = map_alert(0, alert, integration).item
    assert isinstance(item, Rejected)
    return [e.message for e in item.errors]


LABEL_NAMES = st.sampled_from(["service", "job", "team", "alertname"])
LABEL_VALUES = st.sampled_from(["", "checkout", "payments", "Blue Team", "a" * 64])


@given(
    st.dictionaries(LABEL_NAMES, LABEL_VALUES),
    st.lists(LABEL_NAMES, min_size=1, max_size=3, unique=True),
    st.none() | st.sampled_from(["billing", "search"]),
)
def test_service_is_the_first_label_present_else_the_default(
    alert_labels: dict[str, str], wanted: list[str], default: str | None
) -> None:
    integration = Integration("grafana", tuple(wanted), default)
    mapped = map_alert(0, ALERT | {"labels": alert_labels}, integration)
    present = [alert_labels[name] for name in wanted if alert_labels.get(name)]
    expected = present[0] if present else default
    if expected is None:
        assert mapped.reason == "no_service"
    elif expected in ("Blue Team", "a" * 64):
        assert mapped.reason == "invalid_service"
    else:
        assert isinstance(mapped.item, Decoded)
        assert mapped.item.data["service"] == expected
        assert Event.model_validate(mapped.item.data | {"received_at": NOW}).service == expected


@pytest.mark.parametrize(
    ("value", "expected"),
    [(None, None), ("checkout", "checkout"), ("a.b_c-9", "a.b_c-9"), ("0", "0")],
)
def test_default_service_accepted(value: str | None, expected: str | None) -> None:
    assert alerts.default_service(value) == expected


@pytest.mark.parametrize("value", ["", "Checkout", "check out", "-x", "a" * 64, "ö"])
def test_default_service_refused_naming_service(value: str) -> None:
    problem = alerts.default_service(value)
    assert isinstance(problem, Problem)
    assert (problem.status, problem.reason) == (422, "invalid_query")
    assert [(e.index, e.field) for e in problem.errors] == [(None, "service")]
    assert repr(value) in problem.errors[0].message


# -- through the HTTP app -----------------------------------------------------------------


@pytest.fixture
async def api() -> AsyncIterator[Harness]:
    registry = CollectorRegistry()
    publisher = FakePublisher()
    deps = IngestDeps(
        publisher=publisher,
        topics=Topics.from_prefix("u"),
        metrics=IngestMetrics(registry),
        clock=lambda: NOW,
        timer=lambda: NOW,
        max_body_bytes=64 * 1024,
        max_batch_items=10,
        retry_backoff_s=0,
    )
    app = create_app(deps, registry, {}, auth=static_auth())
    async with api_client(app, "http://ingest") as client:
        yield Harness(client, publisher, registry)


def webhook(*items: object) -> bytes:
    return orjson.dumps({"version": "4", "status": "firing", "alerts": list(items)})


def sent(api: Harness) -> list[Event]:
    return [Event.from_json(r.value) for r in api.publisher.sent]


async def test_a_partly_mapped_batch_reports_each_unmapped_alert(
    api: Harness, caplog: pytest.LogCaptureFixture
) -> None:
    batch = webhook(
        ALERT,
        labels(alertname="NodeDown", instance="db-1"),
        labels(alertname="Disk", service="Storage Team"),
        labels(instance="db-2"),
        ALERT | {"fingerprint": "f" * 300},  # the id would pass 256 characters
        ALERT | {"startsAt": "2027-06-01T00:00:00Z"},  # past now + the future skew
    )
    with caplog.at_level(logging.WARNING, logger="services.ingest.alerts"):
        response = await api.client.post(
            "/v1/integrations/alertmanager", content=batch, headers=JSON
        )
    assert response.status_code == 202, response.text
    body = response.json()
    assert (body["accepted"], body["rejected"], body["failed"]) == (1, 5, 0)
    assert [
        (r["index"], r["status"], r["alertname"], r.get("reason")) for r in body["results"]
    ] == [
        (0, "accepted", "HighErrorRate", None),
        (1, "rejected", "NodeDown", "no_service"),
        (2, "rejected", "Disk", "invalid_service"),
        (3, "rejected", None, "no_service"),
        (4, "rejected", "HighErrorRate", "invalid_event"),
        (5, "rejected", "HighErrorRate", "invalid_time"),
    ]
    assert body["results"][1]["errors"] == [
        {
            "field": "labels",
            "message": "no service label ('service') on the alert, and the URL sets no ?service=",
        }
    ]
    assert [e.service for e in sent(api)] == ["checkout"]

    warned = [r for r in caplog.records if r.levelno == logging.WARNING]
    assert [(r.alertname, r.reason, r.index) for r in warned] == [  # type: ignore[attr-defined]
        ("NodeDown", "no_service", 1),
        ("Disk", "invalid_service", 2),
        (None, "no_service", 3),
        ("HighErrorRate", "invalid_event", 4),
        ("HighErrorRate", "invalid_time", 5),
    ]
    assert "'NodeDown'" in warned[0].getMessage()
    assert "no service label" in warned[0].getMessage()

    def unmapped(reason: str) -> float:
        return api.metric(UNMAPPED, flavour="alertmanager", reason=reason)

    assert [
        unmapped(r) for r in ("no_service", "invalid_service", "invalid_event", "invalid_time")
    ] == [2, 1, 1, 1]
    assert api.metric(UNMAPPED, flavour="grafana", reason="no_service") == 0
    # the event counters keep counting them as before
    events_rejected = "slawatch_events_rejected_total"
    assert api.metric(events_rejected, path="http", reason="invalid_event") == 4
    assert api.metric(events_rejected, path="http", reason="future") == 1


async def test_default_service_of_the_url(api: Harness) -> None:
    batch = webhook(labels(alertname="NodeDown"), ALERT)
    response = await api.client.post(
        "/v1/integrations/grafana?service=payments", content=batch, headers=JSON
    )
    assert response.status_code == 202, response.text
    assert response.json()["rejected"] == 0
    assert [(e.service, e.attributes) for e in sent(api)] == [
        ("payments", {"alertname": "NodeDown"}),
        ("checkout", {"alertname": "HighErrorRate", "severity": "page"}),
    ]


@pytest.mark.parametrize("flavour", ["alertmanager", "grafana"])
async def test_a_bad_default_service_is_422_naming_service(api: Harness, flavour: str) -> None:
    response = await api.client.post(
        f"/v1/integrations/{flavour}?service=Payments%20Team", content=webhook(ALERT), headers=JSON
    )
    assert response.status_code == 422
    problem = response.json()
    assert problem["type"] == "urn:slawatch:problem:invalid-query"
    assert [(e["index"], e["field"]) for e in problem["errors"]] == [(None, "service")]
    assert "'Payments Team'" in problem["errors"][0]["message"]
    assert api.publisher.sent == []
    assert api.metric("slawatch_ingest_requests_rejected_total", reason="invalid_query") == 1


async def test_no_alert_mapped_is_422_naming_each_alert(api: Harness) -> None:
    batch = webhook(labels(alertname="NodeDown"), "x", labels(alertname="Disk", job="db"))
    response = await api.client.post("/v1/integrations/alertmanager", content=batch, headers=JSON)
    assert response.status_code == 422
    problem = response.json()
    assert problem["detail"] == "none of the 3 alerts could be mapped to an event; see errors"
    no_service = "no service label ('service') on the alert, and the URL sets no ?service="
    assert [(e["index"], e["message"]) for e in problem["errors"]] == [
        (0, f"alert 'NodeDown': {no_service}"),
        (1, "expected a JSON object, got string"),
        (2, f"alert 'Disk': {no_service}"),
    ]
    assert api.metric(UNMAPPED, flavour="alertmanager", reason="no_service") == 2
    assert api.metric(UNMAPPED, flavour="alertmanager", reason="not_an_object") == 1


async def test_a_publish_failure_is_failed_not_unmapped(api: Harness) -> None:
    api.publisher.fail = frozenset({"a1b2c3d4e5f60718@1795870800000"})
    other = ALERT | {"fingerprint": "0123456789abcdef"}
    response = await api.client.post(
        "/v1/integrations/alertmanager", content=webhook(ALERT, other), headers=JSON
    )
    assert response.status_code == 202, response.text
    assert [(r["status"], r["alertname"]) for r in response.json()["results"]] == [
        ("failed", "HighErrorRate"),
        ("accepted", "HighErrorRate"),
    ]
    assert (
        sum(api.metric(UNMAPPED, flavour="alertmanager", reason=r) for r in alerts.ALERT_REASONS)
        == 0
    )


async def test_openapi_documents_the_webhook_answer_and_default_service(api: Harness) -> None:
    spec = (await api.client.get("/openapi.json")).json()
    schemas = spec["components"]["schemas"]
    for flavour in alerts.FLAVOURS:
        operation = spec["paths"][f"/v1/integrations/{flavour}"]["post"]
        ok = operation["responses"]["202"]["content"]["application/json"]["schema"]
        assert ok == {"$ref": "#/components/schemas/WebhookResponse"}
        (service,) = [p for p in operation["parameters"] if p["name"] == "service"]
        assert service["schema"]["pattern"] == alerts.SERVICE_PATTERN
        assert "`service`" in operation["responses"]["422"]["description"]
    assert set(schemas["WebhookResponse"]["required"]) == {
        "accepted",
        "rejected",
        "failed",
        "results",
    }
    rejected = schemas["RejectedAlert"]
    assert {"alertname", "reason"} <= set(rejected["required"])
    assert rejected["properties"]["reason"]["enum"] == list(alerts.ALERT_REASONS)
