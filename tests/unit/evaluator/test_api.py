"""The status API and the metrics, over a real ASGI transport."""

from __future__ import annotations

import httpx
import pytest
from prometheus_client import CollectorRegistry

from services.evaluator.api import create_app
from services.evaluator.metrics import EvaluatorMetrics
from shared.metrics import new_registry
from shared.schemas import breach_id
from tests.keys import api_client, static_auth
from tests.unit.evaluator.factories import T0, agreement, engine, event


async def always() -> bool:
    return True


async def never() -> bool:
    return False


def client(app: object) -> httpx.AsyncClient:
    return api_client(app, "http://evaluator")


async def test_status_of_owned_groups() -> None:
    evaluator = engine(agreement(groupBy=["customer"]))
    evaluator.assign(1, None)
    evaluator.process(1, event(T0, "bad", attributes={"customer": "acme"}))
    evaluator.process(1, event(T0 + 10, "good", attributes={"customer": "globex"}))
    app = create_app(
        evaluator, new_registry(), {"broker": always, "database": always}, auth=static_auth()
    )
    async with client(app) as http:
        response = await http.get("/v1/objectives/acme-checkout/availability/status")
    assert response.status_code == 200
    body = response.json()
    assert (body["objective_id"], body["scope"], body["partitions"]) == (
        "acme-checkout/availability",
        "owned-partitions",
        [1],
    )
    groups = {g["group"]["customer"]: g for g in body["groups"]}
    assert groups["acme"] == {
        "group": {"customer": "acme"},
        "partition": 1,
        "window": "1m",
        "target": 0.9,
        "sli": 0.0,
        "good": 0,
        "valid": 1,
        "active_breach_id": breach_id(
            "acme-checkout/availability", {"customer": "acme"}, "threshold", T0
        ),
        "opened_at": T0,
        "event_time": T0,
        "severity": "page",
        "windows": [],
        "burn_rates": {},
        "budget_remaining": None,
        "opened_at_rfc3339": "2023-11-14T22:13:20.000Z",
        "event_time_rfc3339": "2023-11-14T22:13:20.000Z",
    }
    assert (groups["globex"]["sli"], groups["globex"]["active_breach_id"]) == (1.0, None)


async def test_status_of_a_burn_rate_objective() -> None:
    doc = agreement(target=0.99, window="30d", alerting={"policy": "burn-rate", "minEvents": 1})
    evaluator = engine(doc)
    evaluator.assign(0, None)
    for i in range(100):
        evaluator.process(0, event(T0 + i * 1_000, "bad" if i % 10 == 0 else "good"))
    app = create_app(evaluator, new_registry(), {}, auth=static_auth())
    async with client(app) as http:
        body = (await http.get("/v1/objectives/acme-checkout/availability/status")).json()
    group = body["groups"][0]
    assert [w["window"] for w in group["windows"]] == ["5m", "30m", "1h", "6h", "3d", "30d"]
    assert group["burn_rates"]["5m"] == pytest.approx(10.0)
    assert group["budget_remaining"] == pytest.approx(-9.0)
    assert group["severity"] == "page" and group["active_breach_id"]

    registry = new_registry()
    EvaluatorMetrics(registry).refresh(evaluator)
    oid = "acme-checkout/availability"
    rate = registry.get_sample_value("slawatch_burn_rate", {"objective": oid, "window": "1h"})
    assert rate == pytest.approx(10.0)
    budget = registry.get_sample_value("slawatch_error_budget_remaining", {"objective": oid})
    assert budget == pytest.approx(-9.0)


async def test_unknown_objective_is_a_problem() -> None:
    app = create_app(engine(agreement()), new_registry(), {}, auth=static_auth())
    async with client(app) as http:
        response = await http.get("/v1/objectives/acme-checkout/latency/status")
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    assert "acme-checkout/latency" in response.json()["detail"]


async def test_readiness_reports_each_check() -> None:
    app = create_app(
        engine(agreement()),
        new_registry(),
        {"broker": always, "database": never},
        auth=static_auth(),
    )
    async with client(app) as http:
        response = await http.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"] == {
        "broker": {"ok": True},
        "database": {"ok": False, "reason": "not ready"},
    }


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def test_metrics_refresh_sets_bounded_gauges() -> None:
    evaluator = engine(agreement(), agreement("per-customer", groupBy=["customer"]))
    evaluator.assign(0, None)
    evaluator.process(0, event(T0, "bad", attributes={"customer": "acme"}))
    evaluator.process(0, event(T0 + 1, "good", attributes={"customer": "acme"}))
    evaluator.process(0, event(T0 + 2, "good", attributes={"customer": "acme"}))
    registry = new_registry()
    metrics = EvaluatorMetrics(registry)
    metrics.refresh(evaluator)
    assert sample(
        registry, "slawatch_sli", objective="acme-checkout/availability", window="1m"
    ) == (2 / 3)
    # a grouped objective exports no SLI series (unbounded label values)
    assert (
        sample(registry, "slawatch_sli", objective="per-customer/availability", window="1m") is None
    )
    assert sample(registry, "slawatch_active_breaches", objective="acme-checkout/availability") == 1
    assert sample(registry, "slawatch_active_breaches", objective="per-customer/availability") == 1


def test_grouped_series_are_capped_to_the_busiest_groups() -> None:
    evaluator = engine(agreement("per-customer", groupBy=["customer"], target=0.5))
    evaluator.assign(0, None)
    traffic = {"acme": ["good", "good", "bad"], "globex": ["good", "bad"], "initech": ["bad"]}
    at = T0
    for customer, outcomes in traffic.items():
        for outcome in outcomes:
            at += 1
            evaluator.process(0, event(at, outcome, attributes={"customer": customer}))
    registry = new_registry()
    metrics = EvaluatorMetrics(registry, max_groups=2)
    metrics.refresh(evaluator)
    oid = "per-customer/availability"
    assert sample(registry, "slawatch_objective_target", objective=oid) == 0.5

    def group_sli(group: str) -> float | None:
        return sample(registry, "slawatch_group_sli", objective=oid, window="1m", group=group)

    assert group_sli("customer=acme") == pytest.approx(2 / 3)
    assert group_sli("customer=globex") == pytest.approx(1 / 2)
    assert group_sli("customer=initech") is None  # past the cap: counted in (other)
    assert group_sli("(other)") == 0.0

    # initech becomes the busiest: it gets a series, globex folds into (other)
    for n in range(5):
        evaluator.process(0, event(at + 1 + n, "good", attributes={"customer": "initech"}))
    metrics.refresh(evaluator)
    assert group_sli("customer=initech") == pytest.approx(5 / 6)
    assert group_sli("customer=globex") is None
    assert group_sli("(other)") == pytest.approx(1 / 2)


def test_grouped_burn_rate_series_per_group() -> None:
    doc = agreement(
        target=0.99,
        window="30d",
        groupBy=["customer"],
        alerting={"policy": "burn-rate", "minEvents": 1},
    )
    evaluator = engine(doc)
    evaluator.assign(0, None)
    for i in range(100):
        outcome = "bad" if i % 10 == 0 else "good"
        evaluator.process(0, event(T0 + i * 1_000, outcome, attributes={"customer": "acme"}))
    registry = new_registry()
    EvaluatorMetrics(registry).refresh(evaluator)
    oid, group = "acme-checkout/availability", "customer=acme"
    rate = sample(registry, "slawatch_group_burn_rate", objective=oid, window="1h", group=group)
    assert rate == pytest.approx(10.0)
    budget = sample(registry, "slawatch_group_error_budget_remaining", objective=oid, group=group)
    assert budget == pytest.approx(-9.0)
    assert sample(registry, "slawatch_burn_rate", objective=oid, window="1h") is None
