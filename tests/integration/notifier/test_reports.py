"""Period reports over the real PostgreSQL: stored definitions, rollups and breaches,
through the notifier app (httpx's ASGI transport)."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services import cli
from services.notifier.acklink import AckLinks
from services.notifier.api import Lifecycle, create_app
from services.notifier.intake import upsert_breach
from services.notifier.metrics import NotifierMetrics
from services.notifier.reports.gauge import refresh_once
from services.notifier.reports.record import GRACE_MS, close_once
from shared import db
from shared.definitions import store
from shared.definitions.load import validate_model
from shared.models import PeriodReport, SliRollup
from shared.schemas import AgreementRef
from shared.settings import Settings
from tests.keys import api_client, static_auth
from tests.unit.notifier.support import make_breach

pytestmark = pytest.mark.integration

MIN = 60_000
HOUR = 3_600_000
# Berlin months: November starts at 23:00 UTC on 31 October.
NOV = int(datetime(2026, 10, 31, 23, tzinfo=UTC).timestamp() * 1000)
OCT = int(datetime(2026, 9, 30, 22, tzinfo=UTC).timestamp() * 1000)
NOW = NOV + 10 * 86_400_000

AGREEMENT: dict[str, Any] = {
    "apiVersion": "slawatch/v1",
    "kind": "Agreement",
    "metadata": {"name": "acme-checkout"},
    "spec": {
        "type": "SLA",
        "provider": "shopco",
        "consumer": "acme",
        "period": {"every": "month", "timezone": "Europe/Berlin"},
        "objectives": [
            {
                "name": "availability",
                "kind": "ratio",
                "service": "checkout",
                "good": {"outcome": "good"},
                "target": 0.999,
                "window": "30d",
                "groupBy": ["customer"],
            }
        ],
        "penalties": [{"below": 0.999, "creditPercent": 10}, {"below": 0.99, "creditPercent": 25}],
        "termination": {"consecutiveMissedPeriods": 2},
        "maintenance": {"exclude": True},
    },
}
MAINTENANCE: dict[str, Any] = {
    "apiVersion": "slawatch/v1",
    "kind": "MaintenanceWindow",
    "metadata": {"name": "db-upgrade"},
    "spec": {
        "match": {"service": "checkout"},
        "start": NOV + HOUR,
        "end": NOV + 2 * HOUR,
        "excludeFromCompliance": True,
    },
}


def rollup(minute: int, good: int, valid: int, customer: str, fingerprint: str = "f1") -> SliRollup:
    return SliRollup(
        objective_id="acme-checkout/availability",
        fingerprint=fingerprint,
        group_key=f"customer={customer}",
        minute=minute,
        group={"customer": customer},
        good=good,
        valid=valid,
    )


async def seed(engine: AsyncEngine) -> None:
    ref = AgreementRef(name="acme-checkout", type="SLA", provider="shopco", consumer="acme")
    async with db.sessions(engine)() as session, session.begin():
        docs = [validate_model(AGREEMENT), validate_model(MAINTENANCE)]
        await store.apply(session, docs, check=False)
        session.add_all(
            [
                # acme: 985 of 1000, and the same minute again under a later definition.
                rollup(NOV, 490, 500, "acme"),
                rollup(NOV, 495, 500, "acme", fingerprint="f2"),
                # Inside the maintenance window: left out.
                rollup(NOV + HOUR + 5 * MIN, 0, 1000, "acme"),
                rollup(NOV + 3 * HOUR, 1000, 1000, "beta"),
                # October: missed too.
                rollup(OCT + HOUR, 50, 100, "acme"),
                # December: not this period.
                rollup(NOV + 31 * 86_400_000, 0, 100, "acme"),
            ]
        )
        for breach in (
            make_breach(
                id="a" * 32,
                agreement=ref,
                objective_id="acme-checkout/availability",
                opened_at=NOV - HOUR,
                at=NOV - HOUR,
            ),
            make_breach(
                id="a" * 32,
                kind="breach.resolved",
                agreement=ref,
                objective_id="acme-checkout/availability",
                opened_at=NOV - HOUR,
                at=NOV + 30 * MIN,
                resolved_at=NOV + 30 * MIN,
            ),
            make_breach(
                id="b" * 32,
                agreement=ref,
                objective_id="acme-checkout/availability",
                group={"customer": "beta"},
                opened_at=NOW - HOUR,
                at=NOW - HOUR,
            ),
        ):
            await upsert_breach(session, breach)


@pytest.fixture
async def client(engine: AsyncEngine) -> AsyncIterator[httpx.AsyncClient]:
    life = Lifecycle(lambda: NOW, AckLinks(b"k", "http://notifier"))
    app = create_app(db.sessions(engine), CollectorRegistry(), {}, life, auth=static_auth())
    async with api_client(app, "http://notifier") as http:
        yield http


async def test_json_report(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    await seed(engine)
    response = await client.get("/v1/agreements/acme-checkout/report", params={"period": "2026-11"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["period"]["start"] == NOV
    assert body["period"]["complete"] is False
    [availability] = body["objectives"]
    total = availability["total"]
    # 985 + 1000 of 1000 + 1000 valid; the maintenance minute's 1000 are left out.
    assert (total["good"], total["valid"], total["excluded_valid"]) == (1985, 2000, 1000)
    assert total["attainment"] == pytest.approx(0.9925)
    assert total["error_budget_used"] == pytest.approx(7.5)
    acme, beta = availability["groups"]
    assert acme["attainment"] == pytest.approx(0.985)
    assert acme["credit_percent"] == 25
    assert [b["duration_ms"] for b in acme["breaches"]] == [30 * MIN]
    assert beta["breaches"][0]["open_at_end"] is True
    assert beta["breached_ms"] == HOUR
    assert availability["exclusions"] == ["MaintenanceWindow/db-upgrade"]
    assert body["credit"] == {
        "percent": 10.0,
        "objective": "availability",
        "attainment": total["attainment"],
    }
    assert body["termination"]["consecutive_missed_periods"] == 2
    assert body["termination"]["at_risk"] is True
    assert body["notes"] == [
        "availability: counted under 2 definitions of what it measures in the periods read"
    ]
    # The default period is the one containing now; `at` names it by an instant.
    assert (await client.get("/v1/agreements/acme-checkout/report")).json() == body
    at = await client.get(
        "/v1/agreements/acme-checkout/report", params={"at": "2026-11-15T12:00:00Z"}
    )
    assert at.json() == body


async def test_csv_and_html(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    await seed(engine)
    by_accept = await client.get(
        "/v1/agreements/acme-checkout/report?period=2026-11", headers={"accept": "text/csv"}
    )
    assert by_accept.headers["content-type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(by_accept.text)))
    assert [(r["group"], r["valid"], r["credit_percent"]) for r in rows] == [
        ("", "2000", "10.0"),
        ("customer=acme", "1000", "25.0"),
        ("customer=beta", "1000", "0.0"),
    ]
    by_param = await client.get("/v1/agreements/acme-checkout/report?period=2026-11&format=csv")
    assert by_param.text == by_accept.text
    page = await client.get("/v1/agreements/acme-checkout/report?period=2026-11&format=html")
    assert page.headers["content-type"].startswith("text/html")
    assert "acme-checkout" in page.text
    assert "99.250 %" in page.text
    assert "termination risk" in page.text


async def test_an_earlier_period(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    await seed(engine)
    body = (await client.get("/v1/agreements/acme-checkout/report?period=2026-10")).json()
    assert body["period"]["start"] == OCT
    assert body["period"]["complete"] is True
    assert body["objectives"][0]["total"]["attainment"] == 0.5
    assert body["credit"]["percent"] == 25
    # The breach opened an hour before November: its October part only, still open
    # when October ended.
    [breach] = body["objectives"][0]["total"]["breaches"]
    assert (breach["duration_ms"], breach["open_at_end"]) == (HOUR, True)
    # September had nothing: the run of missed periods is one long.
    assert body["termination"]["consecutive_missed_periods"] == 1


@pytest.mark.parametrize(
    ("query", "status", "param"),
    [
        ("/v1/agreements/nope/report", 404, None),
        ("/v1/agreements/acme-checkout/report?period=2026-13", 400, "period"),
        ("/v1/agreements/acme-checkout/report?at=yesterday", 400, "at"),
        ("/v1/agreements/acme-checkout/report?period=2026-11&at=2026-11-01", 400, "at"),
        ("/v1/agreements/acme-checkout/report?format=pdf", 400, "format"),
    ],
)
async def test_problems(
    engine: AsyncEngine, client: httpx.AsyncClient, query: str, status: int, param: str | None
) -> None:
    await seed(engine)
    response = await client.get(query)
    assert response.status_code == status
    assert response.headers["content-type"] == "application/problem+json"
    problem = response.json()
    assert problem["status"] == status
    if param is not None:
        assert problem["invalid-params"][0]["name"] == param
        assert problem["detail"].startswith(param)


async def test_cli_report(
    engine: AsyncEngine,
    settings: Settings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await seed(engine)
    assert settings.database_url is not None
    monkeypatch.setenv("SLAWATCH_DATABASE_URL", settings.database_url)
    argv = ["report", "acme-checkout", "--period", "2026-10", "--format", "csv"]
    # The command runs its own event loop, as from a shell.
    assert await asyncio.to_thread(cli.main, argv) == 0
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [(r["group"], r["attainment"], r["credit_percent"]) for r in rows] == [
        ("", "0.5", "25.0"),
        ("customer=acme", "0.5", "25.0"),
    ]
    assert await asyncio.to_thread(cli.main, ["report", "nope"]) == 1
    assert "no agreement named 'nope'" in capsys.readouterr().err


UC: dict[str, Any] = {
    "apiVersion": "slawatch/v1",
    "kind": "Agreement",
    "metadata": {"name": "payments-uc"},
    "spec": {
        "type": "UC",
        "provider": "payco",
        "consumer": "shopco",
        "underpins": "acme-checkout",
        "period": {"every": "month", "timezone": "UTC"},
        "objectives": [
            {
                "name": "authorisations",
                "kind": "ratio",
                "service": "payments",
                "good": {"outcome": "good"},
                "target": 0.99,
                "window": "30d",
            }
        ],
        "penalties": [{"below": 0.99, "creditPercent": 5}],
    },
}


async def test_an_sla_report_shows_its_tree(engine: AsyncEngine, client: httpx.AsyncClient) -> None:
    await seed(engine)
    ref = AgreementRef(name="payments-uc", type="UC", provider="payco", consumer="shopco")
    async with db.sessions(engine)() as session, session.begin():
        await store.apply(session, [validate_model(UC)], check=False)
        session.add(
            SliRollup(
                objective_id="payments-uc/authorisations",
                fingerprint="u1",
                group_key="",
                minute=NOV + 10 * MIN,
                group={},
                good=950,
                valid=1000,
            )
        )
        # open from 10 min into November until after the SLA breach (resolved at 30 min)
        await upsert_breach(
            session,
            make_breach(
                id="c" * 32,
                agreement=ref,
                objective="authorisations",
                objective_id="payments-uc/authorisations",
                service="payments",
                group={},
                opened_at=NOV + 10 * MIN,
                at=NOV + 10 * MIN,
            ),
        )
    body = (
        await client.get("/v1/agreements/acme-checkout/report", params={"period": "2026-11"})
    ).json()
    tree = body["tree"]
    [payments] = tree["underpinned_by"]
    assert (payments["agreement"], payments["type"], payments["missed"]) == (
        "payments-uc",
        "UC",
        True,
    )
    assert payments["objectives"][0]["attainment"] == pytest.approx(0.95)
    # c is still open: it overlaps a (10 to 30 min into the period) and b (its last hour)
    overlaps = {
        (a["breach"], a["underpinning_breach"]): a["overlap_ms"] for a in tree["attributions"]
    }
    assert overlaps == {("a" * 32, "c" * 32): 20 * MIN, ("b" * 32, "c" * 32): HOUR}
    assert tree["credit_owed_to_customer"] == 10.0
    assert tree["credits_owed_by_suppliers"] == [
        {"agreement": "payments-uc", "provider": "payco", "percent": 5.0}
    ]
    html = (
        await client.get(
            "/v1/agreements/acme-checkout/report", params={"period": "2026-11", "format": "html"}
        )
    ).text
    assert "Underpinning agreements" in html and "payments-uc" in html
    # the UC's own report has no tree (only an SLA is underpinned)
    own = await client.get("/v1/agreements/payments-uc/report", params={"period": "2026-11"})
    assert own.json()["tree"] is None


async def test_live_liability_in_the_report_and_as_a_gauge(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    await seed(engine)
    body = (await client.get("/v1/agreements/acme-checkout/report")).json()
    liability = body["liability"]
    assert liability["as_of"] == NOW
    # 99.25 % so far: the 10 % tier; nothing in the last hour, so the period's share
    assert liability["credit_percent"] == 10.0
    assert liability["projected_credit_percent"] == 10.0
    [availability] = liability["objectives"]
    assert availability["projected_attainment"] == pytest.approx(0.9925)

    registry = CollectorRegistry()
    metrics = NotifierMetrics(registry)
    async with db.sessions(engine)() as session:
        shown = await refresh_once(session, metrics, NOW, set())
    assert shown == {"acme-checkout"}
    for basis in ("now", "projected"):
        labels = {"agreement": "acme-checkout", "basis": basis}
        assert registry.get_sample_value("slawatch_agreement_credit_percent", labels) == 10.0
    # an agreement deleted since loses its series at the next refresh
    metrics.agreement_credit.labels("gone", "now").set(5.0)
    async with db.sessions(engine)() as session:
        await refresh_once(session, metrics, NOW, {"acme-checkout", "gone"})
    labels = {"agreement": "gone", "basis": "now"}
    assert registry.get_sample_value("slawatch_agreement_credit_percent", labels) is None


async def test_a_closed_period_is_a_report_of_record(
    engine: AsyncEngine, client: httpx.AsyncClient
) -> None:
    await seed(engine)
    first = await client.get("/v1/agreements/acme-checkout/report?period=2026-10")
    assert first.headers["x-slawatch-report"] == "of-record"
    # the agreement is edited and late counts arrive: October's report does not move
    edited = {**AGREEMENT, "spec": {**AGREEMENT["spec"], "penalties": []}}
    async with db.sessions(engine)() as session, session.begin():
        await store.apply(session, [validate_model(edited)], check=False)
        session.add(rollup(OCT + 2 * HOUR, 0, 1000, "acme"))
    for fmt in ("json", "csv", "html"):
        again = await client.get(f"/v1/agreements/acme-checkout/report?period=2026-10&format={fmt}")
        same = await client.get(f"/v1/agreements/acme-checkout/report?period=2026-10&format={fmt}")
        assert again.content == same.content
    again = await client.get("/v1/agreements/acme-checkout/report?period=2026-10")
    assert again.content == first.content
    assert again.json()["credit"]["percent"] == 25
    # the period in progress is built live, with the edit
    live = await client.get("/v1/agreements/acme-checkout/report")
    assert live.headers["x-slawatch-report"] == "live"
    assert live.json()["credit"]["percent"] == 0


async def test_the_notifier_freezes_each_period_after_its_close(engine: AsyncEngine) -> None:
    await seed(engine)
    dec = NOV + 30 * 86_400_000  # 1 December, Berlin midnight
    async with db.sessions(engine)() as session:
        # the agreement was stored now (the test's wall clock): periods before it
        # are never frozen by the loop
        assert await close_once(session, NOW) == []
        await session.execute(text("UPDATE definition_versions SET created_at = '2026-09-01'"))
        await session.commit()
        assert await close_once(session, NOW) == ["acme-checkout/2026-10"]
        assert await close_once(session, NOW) == []  # once
        # November closes at dec; frozen only after the grace
        assert await close_once(session, dec + GRACE_MS - 1) == []
        assert await close_once(session, dec + GRACE_MS) == ["acme-checkout/2026-11"]
        stored = await session.get(PeriodReport, ("acme-checkout", NOV))
    assert stored is not None and stored.label == "2026-11"
    assert '"complete": true' in stored.json and stored.csv.startswith("agreement,period")
