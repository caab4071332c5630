"""``slawatch status`` as a user runs it: the agreements stored in real PostgreSQL,
each objective's groups from an evaluator app served on loopback (its real engine,
after events), with an API key; and a refused key is one line."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.cli import main
from services.evaluator.api import create_app
from shared.embedded import free_port
from shared.metrics import new_registry
from shared.runtime import HttpServer
from shared.settings import Settings
from tests.integration.notifier.support import apply_docs
from tests.keys import ADMIN_KEY, static_auth
from tests.unit.evaluator.factories import T0, agreement, agreement_doc, engine, event

pytestmark = pytest.mark.integration


@pytest.fixture
async def evaluator_port() -> AsyncIterator[int]:
    evaluator = engine(agreement(groupBy=["customer"]))
    evaluator.assign(0, None)
    evaluator.process(0, event(T0, "bad", attributes={"customer": "acme"}))
    evaluator.process(0, event(T0 + 10, "good", attributes={"customer": "globex"}))
    port = free_port()
    server = HttpServer(
        create_app(evaluator, new_registry(), {}, auth=static_auth()), "127.0.0.1", port
    )
    task = asyncio.create_task(server.serve())
    await asyncio.wait_for(server.started(), 10)
    yield port
    server.stop()
    await task


async def test_status_lists_every_group_with_its_state(
    settings: Settings,
    engine: AsyncEngine,
    evaluator_port: int,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await apply_docs(engine, agreement_doc(groupBy=["customer"]), agreement_doc("other"))
    assert settings.database_url is not None
    monkeypatch.setenv("SLAWATCH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("SLAWATCH_EVALUATOR_PORT", str(evaluator_port))
    monkeypatch.setenv("SLAWATCH_API_KEY", ADMIN_KEY)

    assert await asyncio.to_thread(main, ["status", "-o", "json"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert [(f["agreement"], f["group"], f["state"]) for f in found] == [
        ("acme-checkout", {"customer": "acme"}, "breached page"),
        ("acme-checkout", {"customer": "globex"}, "ok"),
        ("other", {}, "no data"),  # stored, not evaluated by this evaluator
    ]
    assert await asyncio.to_thread(main, ["status", "--agreement", "acme-checkout"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split()[0] == "AGREEMENT" and len(lines) == 4
    assert "customer=acme" in lines[2] and "breached page" in lines[2] and "0.0 %" in lines[2]

    monkeypatch.setenv("SLAWATCH_API_KEY", "sw_" + "W" * 43)
    assert await asyncio.to_thread(main, ["status"]) == 2
    assert "refused the API key (401)" in capsys.readouterr().err
    assert await asyncio.to_thread(main, ["status", "--agreement", "nope"]) == 2
    assert "no agreement named 'nope'" in capsys.readouterr().err
