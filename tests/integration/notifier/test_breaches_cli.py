"""``slawatch breaches`` against real PostgreSQL: the listing as the notifier recorded
it (filters, JSON, table), and ``--watch``'s loop reading the changes the notifier
records while it runs."""

from __future__ import annotations

import asyncio
import io
import json

import pytest
import yaml
from sqlalchemy.ext.asyncio import AsyncEngine

from services.cli import main
from services.notifier.breaches_cli import Filters, Listed, fetch, watch
from services.notifier.intake import upsert_breach
from shared import db
from shared.models import BreachAck
from shared.settings import Settings
from tests.unit.notifier.support import T0, make_breach

pytestmark = pytest.mark.integration


async def record(engine: AsyncEngine, **breach: object) -> None:
    async with db.sessions(engine)() as session, session.begin():
        await upsert_breach(session, make_breach(**breach))


@pytest.fixture
def database(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.database_url is not None
    monkeypatch.setenv("SLAWATCH_DATABASE_URL", settings.database_url)


async def test_the_listing_shows_what_the_notifier_recorded(
    database: None, engine: AsyncEngine, capsys: pytest.CaptureFixture[str]
) -> None:
    await record(engine, id="a" * 32)
    await record(engine, id="b" * 32, service="search", objective_id="acme-checkout/latency")
    await record(engine, id="c" * 32, kind="breach.resolved", resolved_at=T0 + 60_000)
    async with db.sessions(engine)() as session, session.begin():
        session.add(BreachAck(breach_id="a" * 32, acked_by="ana", via="api", at=T0 + 1))

    def run(*argv: str) -> tuple[int, str]:
        code = main(["breaches", *argv])
        return code, capsys.readouterr().out

    code, out = await asyncio.to_thread(run, "-o", "json")
    assert code == 0
    assert sorted((b["id"][0], b["status"], b["acked_by"]) for b in json.loads(out)) == [
        ("a", "open", "ana"),
        ("b", "open", None),
    ]
    code, out = await asyncio.to_thread(run, "--status", "all", "--service=checkout", "-oyaml")
    assert code == 0
    assert sorted(b["id"][0] for b in yaml.safe_load(out)) == ["a", "c"]
    code, out = await asyncio.to_thread(run)
    lines = out.splitlines()
    assert lines[0].split()[0] == "SEVERITY" and len(lines) == 4  # header, rule, 2 rows
    assert "ana" in lines[2] or "ana" in lines[3]
    code = await asyncio.to_thread(main, ["breaches", "--limit", "9999"])
    assert code == 2
    assert "--limit is 9999" in capsys.readouterr().err


async def test_watch_prints_what_opens_and_resolves_while_it_runs(
    engine: AsyncEngine,
) -> None:
    await record(engine, id="a" * 32)
    sessions = db.sessions(engine)
    filters = Filters()

    async def fetch_since(after: int | None) -> list[Listed]:
        async with sessions() as session:
            return await fetch(session, filters, after)

    script = [
        lambda: record(engine, id="b" * 32, at=T0 + 5_000, opened_at=T0 + 5_000),
        lambda: record(engine, id="a" * 32, kind="breach.resolved", at=T0 + 9_000,
                       resolved_at=T0 + 9_000),
        lambda: asyncio.sleep(0),
    ]  # fmt: skip

    async def sleep(_seconds: float) -> None:
        await script.pop(0)()

    out = io.StringIO()
    await watch(fetch_since, out, sleep=sleep, interval_s=1.0, rounds=3)
    changes = [(line.split()[1], line.split()[3]) for line in out.getvalue().splitlines()]
    assert changes == [
        ("opened", "acme-checkout/availability"),
        ("resolved", "acme-checkout/availability"),
    ]
