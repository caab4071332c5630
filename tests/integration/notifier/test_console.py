"""The on-call console through the notifier's app on the real PostgreSQL: sign-in
with keys stored in the database (the real key cache), cookie flags, CSRF refusals,
the Now page's order and filters, the breach timeline, ack through the form, and the
event stream (over a real socket: it never ends, so it needs a real server)."""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import UTC, datetime
from urllib.parse import urlencode

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier import outbox
from services.notifier.acklink import AckLinks
from services.notifier.api import Lifecycle, create_app
from services.notifier.console import console_config, mount_console
from services.notifier.escalation import PlannedStep
from services.notifier.intake import record_breach
from shared import db
from shared.apikeys import store
from shared.apikeys.cache import KeyCache
from shared.apikeys.scopes import Scope
from shared.http.auth import PUBLIC_PATHS, Authenticator, routes_of, unguarded_routes
from shared.models import BreachAck, BreachEventRecord, NotifierSilence, SliRollup
from shared.runtime import HttpServer
from shared.settings import Settings
from tests.integration.notifier.support import apply_docs, eventually, scalar
from tests.keys import TEST_RATE, bearer
from tests.unit.notifier.support import T0, make_breach, unused_port

pytestmark = pytest.mark.integration

NOW = T0 + 3_600_000
BASE = "http://notifier"


async def always() -> bool:
    return True


@dataclass
class Console:
    app: FastAPI
    keys: KeyCache
    engine: AsyncEngine
    settings: Settings

    base: str = BASE

    def client(self) -> httpx.AsyncClient:
        transport = httpx.ASGITransport(app=self.app)
        return httpx.AsyncClient(transport=transport, base_url=self.base)

    async def key(self, name: str, *scopes: Scope) -> str:
        async with db.sessions(self.engine)() as session, session.begin():
            key = await store.create_key(
                session,
                name=name,
                scopes=scopes or (Scope.BREACHES_READ, Scope.BREACHES_ACK),
                actor="tests",
                now=datetime.now(UTC),
                rate=TEST_RATE,
            )
        await self.keys.load()
        return key

    async def revoke(self, name: str) -> None:
        async with db.sessions(self.engine)() as session, session.begin():
            await store.revoke_key(session, name, actor="tests", now=datetime.now(UTC))


def build(engine: AsyncEngine, settings: Settings, public_url: str = BASE) -> Console:
    sessions = db.sessions(engine)
    keys = KeyCache(sessions, db.database_url(settings))
    links = AckLinks(b"s" * 32, public_url)
    life = Lifecycle(lambda: NOW, links)
    app = create_app(
        sessions,
        CollectorRegistry(),
        {"database": always},
        life,
        auth=Authenticator(keys, default_rate=TEST_RATE, clock=lambda: NOW),
    )
    mount_console(app, console_config(sessions, life, links.key, public_url))
    return Console(app, keys, engine, settings, public_url)


@pytest.fixture
async def console(engine: AsyncEngine, settings: Settings) -> Console:
    return build(engine, settings)


def hidden(page: str, name: str) -> str:
    found = re.search(rf'name="{name}" value="([^"]*)"', page)
    assert found, f"no hidden {name} in the page"
    return found.group(1)


async def sign_in(http: httpx.AsyncClient, key: str, next_path: str = "/console") -> httpx.Response:
    form = await http.get("/console/login", params={"next": next_path})
    assert form.status_code == 200
    return await http.post(
        "/console/login",
        data={"key": key, "csrf": hidden(form.text, "csrf"), "next": hidden(form.text, "next")},
    )


def listed(page: str) -> list[str]:
    return re.findall(r'href="/console/breaches/([^"]+)"', page)


async def seed(engine: AsyncEngine) -> None:
    specs = [
        ("t1", "ticket", 1),
        ("p2", "page", 2),
        ("p1", "page", 1),
        ("i0", "info", 0),
        ("w3", "warning", 3),
    ]
    async with db.sessions(engine)() as session, session.begin():
        for breach_id, severity, offset in specs:
            breach = make_breach(
                id=breach_id, severity=severity, opened_at=T0 + offset, at=T0 + offset
            )
            await record_breach(session, breach, ["hook"], T0)
        other = make_breach(
            id="o1",
            opened_at=T0 + 5,
            at=T0 + 5,
            agreement=make_breach().agreement.model_copy(
                update={"name": "beta-search", "type": "OLA"}
            ),
        )
        await record_breach(session, other, ["hook"], T0)
        gone = make_breach(id="r9", opened_at=T0, at=T0)
        await record_breach(session, gone, ["hook"], T0)
        await record_breach(
            session, make_breach(id="r9", opened_at=T0, kind="breach.resolved", at=T0 + 9), [], T0
        )


async def test_every_console_route_needs_a_session_and_passes_the_route_check(
    console: Console,
) -> None:
    assert unguarded_routes(console.app) == []
    guarded = [
        r
        for r in routes_of(console.app)
        if r.path.startswith("/console") and r.path not in PUBLIC_PATHS
    ]
    assert {r.path for r in guarded} == {
        "/console",
        "/console/table",
        "/console/events",
        "/console/breaches/{breach_id}",
        "/console/breaches/{breach_id}/ack",
        "/console/silences",
        "/console/silences/new",
        "/console/silences/{silence_id}/expire",
        "/console/agreements",
        "/console/agreements/{name}/report",
    }
    await seed(console.engine)
    async with console.client() as http:
        for route in guarded:
            path = (
                route.path.replace("{breach_id}", "p1")
                .replace("{silence_id}", "x")
                .replace("{name}", "x")
            )
            for method in route.methods - {"HEAD"}:
                answer = await http.request(method, path)
                assert answer.status_code == 303, (method, path)
                back = path if method == "GET" else "/console"
                assert answer.headers["location"] == "/console/login?" + urlencode({"next": back})
                assert "p1" not in answer.text and "acme" not in answer.text
        # the service's / names the console
        assert (await http.get("/")).json()["links"]["console"] == "/console"
        # a forged cookie is no session either
        http.cookies.set("slawatch_console", "e30.forged", path="/console")
        assert (await http.get("/console")).status_code == 303


async def test_sign_in_good_bad_and_revoked_keys(console: Console) -> None:
    key = await console.key("oncall-ana")
    async with console.client() as http:
        bad = await sign_in(http, "sw_" + "B" * 43)
        assert bad.status_code == 401
        assert "Unknown, revoked or expired API key" in bad.text
        assert "slawatch_console=" not in bad.headers.get("set-cookie", "")
        assert (await sign_in(http, "not a key")).status_code == 401

        good = await sign_in(http, key, "/console/breaches/x")
        assert good.status_code == 303
        assert good.headers["location"] == "/console/breaches/x"
        cookie = next(
            v for v in good.headers.get_list("set-cookie") if v.startswith("slawatch_console=")
        )
        flags = {part.strip().lower() for part in cookie.split(";")[1:]}
        assert {"httponly", "samesite=strict", "path=/console"} <= flags
        assert "secure" not in flags  # the public URL is http
        assert key not in cookie

        page = await http.get("/console")
        assert page.status_code == 200
        assert "signed in as oncall-ana" in page.text
        policy = page.headers["content-security-policy"]
        nonce = re.search(r"'nonce-([^']+)'", policy)
        assert nonce and f'<script nonce="{nonce.group(1)}">' in page.text
        assert "unsafe-inline" not in policy

        # Revoked: the key cache reloads on the notification (or within its 1 s
        # refresh); the session ends within the same 2 s the API honours.
        stop = asyncio.Event()
        cache = asyncio.create_task(console.keys.run(stop))
        try:
            await console.revoke("oncall-ana")
            started = time.monotonic()

            async def signed_out() -> bool:
                return (await http.get("/console")).status_code == 303

            await eventually(signed_out, timeout_s=2.0)
            assert time.monotonic() - started < 2.0
        finally:
            stop.set()
            await cache
        again = await sign_in(http, key)
        assert again.status_code == 401


async def test_cookies_are_secure_behind_https(engine: AsyncEngine, settings: Settings) -> None:
    console = build(engine, settings, public_url="https://slawatch.example")
    key = await console.key("oncall-bo")
    async with console.client() as http:
        good = await sign_in(http, key)
        cookie = next(
            v for v in good.headers.get_list("set-cookie") if v.startswith("slawatch_console=")
        )
        assert "secure" in cookie.lower()


async def test_forms_without_their_csrf_token_are_refused(console: Console) -> None:
    key = await console.key("oncall-cy")
    await seed(console.engine)
    async with console.client() as http:
        # sign-in: no token, and a token made for another nonce
        await http.get("/console/login")
        assert (await http.post("/console/login", data={"key": key})).status_code == 403
        async with console.client() as other:
            foreign = hidden((await other.get("/console/login")).text, "csrf")
        refused = await http.post("/console/login", data={"key": key, "csrf": foreign})
        assert refused.status_code == 403

        assert (await sign_in(http, key)).status_code == 303
        detail = await http.get("/console/breaches/p1")
        token = hidden(detail.text, "csrf")
        for data in ({"comment": "x"}, {"comment": "x", "csrf": token[:-2] + "AA"}):
            answer = await http.post("/console/breaches/p1/ack", data=data)
            assert answer.status_code == 403
        async with db.sessions(console.engine)() as session:
            assert await session.get(BreachAck, "p1") is None

        assert (await http.post("/console/logout", data={})).status_code == 403
        assert (await http.get("/console")).status_code == 200
        out = await http.post("/console/logout", data={"csrf": token})
        assert (out.status_code, out.headers["location"]) == (303, "/console/login")
        assert (await http.get("/console")).status_code == 303


async def test_now_lists_open_breaches_in_order_with_filters(console: Console) -> None:
    key = await console.key("oncall-di")
    await seed(console.engine)
    async with db.sessions(console.engine)() as session, session.begin():
        session.add(BreachAck(breach_id="p2", acked_by="ana", via="api", at=T0 + 50))
    async with console.client() as http:
        await sign_in(http, key)
        page = (await http.get("/console")).text
        assert listed(page) == ["p1", "p2", "o1", "t1", "w3", "i0"]
        # tab title: open pages nobody acked (p1 and o1; p2 is acked)
        assert '<title id="title">(2) Now · slawatch console</title>' in page
        assert "acked by ana" in page
        assert "SLI 98.0 % (98 of 100 good) vs target 99.9 % over 1h" in page
        assert "SLA" in page and "shopco → acme" in page and "customer=acme" in page
        assert f'data-ms="{T0 + 1}"' in page and "2023-11-14 22:13:20 UTC" in page

        async def ids(**params: str) -> list[str]:
            return listed((await http.get("/console", params=params)).text)

        assert await ids(severity="page") == ["p1", "p2", "o1"]
        assert await ids(agreement="beta-search") == ["o1"]
        assert await ids(acked="yes") == ["p2"]
        assert await ids(acked="no", severity="page") == ["p1", "o1"]
        assert await ids(party="acme", severity="page") == ["p1", "p2", "o1"]
        assert await ids(party="nobody") == []
        table = await http.get("/console/table", params={"severity": "ticket"})
        assert table.text.lstrip().startswith("<tbody") and listed(table.text) == ["t1"]


async def test_scopes_decide_what_a_session_sees(console: Console) -> None:
    ack_only = await console.key("ack-only", Scope.BREACHES_ACK)
    read_only = await console.key("read-only", Scope.BREACHES_READ)
    await seed(console.engine)
    async with console.client() as http:
        await sign_in(http, ack_only)
        page = await http.get("/console")
        assert page.status_code == 403 and "breaches:read" in page.text
        assert listed(page.text) == []
    async with console.client() as http:
        await sign_in(http, read_only)
        detail = await http.get("/console/breaches/p1")
        assert detail.status_code == 200 and 'action="/console/breaches/p1/ack"' not in detail.text
        token = hidden(detail.text, "csrf")
        answer = await http.post("/console/breaches/p1/ack", data={"csrf": token})
        assert answer.status_code == 403
        assert (await http.get("/console/breaches/nope")).status_code == 404


async def test_detail_timeline_and_ack_through_the_form(console: Console) -> None:
    key = await console.key("oncall-ed")
    await seed(console.engine)
    async with db.sessions(console.engine)() as session, session.begin():
        step = PlannedStep("escalation.1", ("pager",), T0 + 600_000)
        await record_breach(session, make_breach(id="e1"), ["hook"], T0, [step])
        for minute, good in ((T0 - 30 * 60_000, 999), (T0 - 29 * 60_000, 998), (T0, 980)):
            session.add(
                SliRollup(
                    objective_id="acme-checkout/availability",
                    fingerprint="f1",
                    group_key="customer=acme",
                    minute=minute,
                    group={"customer": "acme"},
                    good=good,
                    valid=1000,
                )
            )
        claimed = [
            c
            for c in await outbox.claim(session, T0, lease_ms=1_000, limit=20)
            if c.breach_id == "p1"
        ]
        await outbox.finish(
            session,
            claimed[0],
            outbox.Decision("retry", 100),
            now_ms=T0 + 5,
            status_code=503,
            latency_ms=12,
            error="http_5xx: HTTP 503 from hook",
        )
    async with console.client() as http:
        await sign_in(http, key)
        detail = await http.get("/console/breaches/p1")
        assert detail.status_code == 200
        text = detail.text
        assert "<strong>breach.opened</strong>" in text
        assert "<strong>delivery of breach.opened</strong>: to hook" in text
        assert "attempt 1: retry HTTP 503 in 12 ms: http_5xx: HTTP 503 from hook" in text
        # the SLI chart from the series' rollups: the hour before the opening to now
        assert '<svg viewBox="0 0 600 200"' in text
        assert text.count('<polyline class="per-bucket"') == 2  # nothing from 21:45 to 22:13: a gap
        assert text.count('<polyline class="cumulative"') == 1
        assert "SLI of this series, 2023-11-14 21:13:00 UTC to 2023-11-14 23:14:20 UTC" in text
        assert ' style="' not in text  # the policy admits no style attribute

        posted = await http.post(
            "/console/breaches/p1/ack",
            data={"csrf": hidden(text, "csrf"), "by": "Ed <on call>", "comment": "rolling back"},
        )
        assert (posted.status_code, posted.headers["location"]) == (303, "/console/breaches/p1")
        async with db.sessions(console.engine)() as session:
            ack = await session.get(BreachAck, "p1")
            assert ack is not None
            assert (ack.acked_by, ack.comment, ack.via, ack.actor, ack.at) == (
                "Ed <on call>",
                "rolling back",
                "console",
                "oncall-ed",
                NOW,
            )
            kinds = (
                await session.execute(
                    select(BreachEventRecord.kind).where(BreachEventRecord.breach_id == "p1")
                )
            ).scalars()
            assert "breach.acknowledged" in set(kinds)
        after = (await http.get("/console/breaches/p1")).text
        assert "Acknowledged by Ed &lt;on call&gt;" in after  # escaped, not markup
        assert "by Ed &lt;on call&gt; (key oncall-ed) via console: rolling back" in after
        assert 'action="/console/breaches/p1/ack"' not in after

        # an escalation step waits in the timeline; the ack form cancels it
        escalated = (await http.get("/console/breaches/e1")).text
        assert (
            "<strong>delivery of escalation step 1</strong>: to pager: pending, due " in escalated
        )
        await http.post("/console/breaches/e1/ack", data={"csrf": hidden(escalated, "csrf")})
        step_status = await scalar(
            console.engine,
            "SELECT status FROM deliveries WHERE breach_id = 'e1' AND kind = 'escalation.1'",
        )
        assert step_status == "cancelled"
        assert "to pager: cancelled" in (await http.get("/console/breaches/e1")).text


@contextlib.asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[str]:
    port = unused_port()
    server = HttpServer(app, "127.0.0.1", port)
    task = asyncio.create_task(server.serve())  # check_guarded runs here, on the real app
    try:
        async with asyncio.timeout(10):
            await server.started()
        yield f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await task


async def test_the_event_stream_tells_of_a_new_breach_within_2_s(console: Console) -> None:
    key = await console.key("oncall-fa")
    await seed(console.engine)
    async with serving(console.app) as base, httpx.AsyncClient(base_url=base) as http:
        assert (await sign_in(http, key)).status_code == 303
        async with http.stream("GET", "/console/events", timeout=10) as stream:
            assert stream.status_code == 200
            assert stream.headers["content-type"].startswith("text/event-stream")
            lines = stream.aiter_lines()
            assert (await anext(lines)).startswith("retry: ")
            assert await anext(lines) == ""
            assert await anext(lines) == "event: ready"  # watching: now the change
            async with db.sessions(console.engine)() as session, session.begin():
                await record_breach(
                    session, make_breach(id="n1", opened_at=T0 + 7, at=T0 + 7), ["hook"], T0
                )
            started = time.monotonic()
            async with asyncio.timeout(2.0):
                async for line in lines:
                    if line == "event: changed":
                        break
            assert time.monotonic() - started < 2.0
        assert "n1" in listed((await http.get("/console/table")).text)


async def test_the_event_stream_ends_when_the_key_is_revoked(console: Console) -> None:
    key = await console.key("oncall-gus")
    async with serving(console.app) as base, httpx.AsyncClient(base_url=base) as http:
        assert (await sign_in(http, key)).status_code == 303
        async with http.stream("GET", "/console/events", timeout=10) as stream:
            lines = stream.aiter_lines()
            assert [await anext(lines) for _ in range(5)] == [
                "retry: 1000",
                "",
                "event: ready",
                "data: ",
                "",
            ]
            await console.revoke("oncall-gus")
            await console.keys.load()  # what the cache's reload does on the notification
            async with asyncio.timeout(2.0):
                rest = [line async for line in lines]
        assert rest[:1] == ["event: signedout"]


def preview(page: str) -> list[str]:
    block = re.search(r'<ul id="preview">(.*?)</ul>', page, re.S)
    assert block, "no preview in the page"
    return listed(block.group(1))


async def silence_rows(engine: AsyncEngine) -> list[NotifierSilence]:
    async with db.sessions(engine)() as session:
        return list((await session.execute(select(NotifierSilence))).scalars())


async def test_silences_preview_create_list_and_expire(console: Console) -> None:
    key = await console.key("oncall-hal")
    admin = await console.key("admin-hal", Scope.ADMIN)
    await seed(console.engine)
    window = {
        "apiVersion": "slawatch/v1",
        "kind": "MaintenanceWindow",
        "metadata": {"name": "db-upgrade"},
        "spec": {
            "match": {"agreement": "beta-search"},
            "start": "2023-11-14T23:00:00Z",
            "end": "2023-11-15T01:00:00Z",
        },
    }
    await apply_docs(console.engine, window)
    async with console.client() as http:
        await sign_in(http, key)
        # from a breach page: the form prefilled with its series, and the preview
        detail = (await http.get("/console/breaches/o1")).text
        link = re.search(r'<a href="(/console/silences/new\?[^"]+)">Silence this breach', detail)
        assert link
        prefilled = await http.get(link.group(1).replace("&amp;", "&"))
        assert prefilled.status_code == 200
        assert "agreement=beta-search\nobjective=availability\ncustomer=acme" in prefilled.text
        assert preview(prefilled.text) == ["o1"]
        csrf = hidden(prefilled.text, "csrf")

        form = {"csrf": csrf, "match": "severity=ticket", "duration": "2h", "comment": "known"}
        shown = await http.post("/console/silences", data={**form, "action": "preview"})
        assert shown.status_code == 200 and preview(shown.text) == ["t1"]
        for bad, status in (
            ({**form, "csrf": ""}, 403),
            ({**form, "match": ""}, 422),
            ({**form, "match": "severity"}, 422),
            ({**form, "duration": "soon"}, 422),
        ):
            refused = await http.post("/console/silences", data={**bad, "action": "create"})
            assert refused.status_code == status, bad
        assert await silence_rows(console.engine) == []

        created = await http.post("/console/silences", data={**form, "action": "create"})
        assert (created.status_code, created.headers["location"]) == (303, "/console/silences")
        [row] = await silence_rows(console.engine)
        assert (row.matchers, row.starts_at, row.ends_at, row.comment, row.actor) == (
            {"severity": "ticket"},
            NOW,
            NOW + 7_200_000,
            "known",
            "oncall-hal",
        )
        # the notifier mutes from the same table: the API lists it as active
        api = await http.get("/v1/silences", params={"active": "true"}, headers=bearer(admin))
        assert [s["id"] for s in api.json()] == [row.id]

        page = (await http.get("/console/silences")).text
        assert (
            "<code>severity=ticket</code>" in page and "<code>agreement=beta-search</code>" in page
        )
        assert "MaintenanceWindow/db-upgrade" in page
        assert f'action="/console/silences/{row.id}/expire"' in page
        assert page.count("Expire now") == 1  # the definition is changed by applying YAML
        muted = re.findall(r"<tr>(.*?)</tr>", page, re.S)
        assert [listed(r) for r in muted if "<code>" in r] == [["o1"], ["t1"]]

        refused = await http.post(f"/console/silences/{row.id}/expire", data={})
        assert refused.status_code == 403
        expired = await http.post(
            f"/console/silences/{row.id}/expire", data={"csrf": hidden(page, "csrf")}
        )
        assert expired.status_code == 303
        [row] = await silence_rows(console.engine)
        assert row.ends_at == NOW
        assert (
            f"/console/silences/{row.id}/expire" not in (await http.get("/console/silences")).text
        )


async def test_a_read_only_key_sees_silences_but_cannot_make_them(console: Console) -> None:
    key = await console.key("read-ivy", Scope.BREACHES_READ)
    await seed(console.engine)
    async with console.client() as http:
        await sign_in(http, key)
        assert (await http.get("/console/silences")).status_code == 200
        assert (await http.get("/console/silences/new")).status_code == 403
        detail = await http.get("/console/breaches/p1")
        assert detail.status_code == 200 and "Silence this breach" not in detail.text


AGREEMENT = {
    "apiVersion": "slawatch/v1",
    "kind": "Agreement",
    "metadata": {"name": "acme-checkout"},
    "spec": {
        "type": "SLA",
        "provider": "shopco",
        "consumer": "acme",
        "period": {"every": "month", "timezone": "UTC"},
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
    },
}


async def test_agreements_page_and_report(console: Console) -> None:
    key = await console.key("lead-jo", Scope.REPORTS_READ, Scope.BREACHES_READ)
    oncall = await console.key("oncall-jo")
    await seed(console.engine)
    await apply_docs(console.engine, AGREEMENT)
    async with db.sessions(console.engine)() as session, session.begin():
        session.add(
            SliRollup(
                objective_id="acme-checkout/availability",
                fingerprint="f1",
                group_key="customer=acme",
                minute=T0,
                group={"customer": "acme"},
                good=980,
                valid=1000,
            )
        )
    async with console.client() as http:
        await sign_in(http, oncall)
        refused = await http.get("/console/agreements")
        assert refused.status_code == 403 and "reports:read" in refused.text
    async with console.client() as http:
        await sign_in(http, key)
        page = await http.get("/console/agreements")
        assert page.status_code == 200
        row = re.search(r"<td>availability .*?</tr>", page.text, re.S)
        assert row, page.text
        cells = re.findall(r"<td>(.*?)</td>", row.group(0), re.S)
        assert "99.9 %" in cells[1]
        assert "98.00 %" in cells[2] and "missed" in cells[2]
        assert "overspent" in cells[3]
        assert ">5</a>" in cells[4]  # the five open acme-checkout breaches of the seed
        assert "Credit exposure: <strong>25 %</strong>" in page.text
        assert "2023-11" in page.text

        report = await http.get("/console/agreements/acme-checkout/report")
        assert report.status_code == 200 and "acme-checkout" in report.text
        policy = report.headers["content-security-policy"]
        assert re.search(r"style-src 'sha256-[A-Za-z0-9+/=]+'", policy)
        assert "script-src" not in policy and "unsafe-inline" not in policy
        assert (await http.get("/console/agreements/nope/report")).status_code == 404
        bad = await http.get("/console/agreements/acme-checkout/report", params={"period": "x"})
        assert bad.status_code == 400
