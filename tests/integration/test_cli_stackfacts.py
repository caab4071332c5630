"""A second terminal needs no exports: with only ``<data_dir>/stack.json`` naming the
real PostgreSQL, ``migrate``, ``apply`` and ``history`` run against it."""

from __future__ import annotations

import asyncio
import csv
import io
import os
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from services.cli import LOCAL_OUTBOUND_ALLOW, main
from shared import stackfacts
from shared.definitions.kinds.receivers import RULES, use_rules
from shared.settings import Settings

pytestmark = pytest.mark.integration

RECEIVER = """
apiVersion: slawatch/v1
kind: Receiver
metadata: {name: hook}
spec: {type: webhook, url: "http://127.0.0.1:9000/hook"}
"""


@pytest.fixture
def only_facts(
    settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    assert settings.database_url is not None
    for name in list(os.environ):
        if name.startswith("SLAWATCH_"):
            monkeypatch.delenv(name)
    data_dir = tmp_path / "data"
    data_dir.mkdir()
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(data_dir))
    stackfacts.write(
        stackfacts.facts_path(data_dir),
        stackfacts.current_process_facts(
            database_url=settings.database_url,
            kafka_bootstrap=settings.kafka_bootstrap or "",
            services={},
            admin_key_file=data_dir / "admin.key",
            data_dir=data_dir,
            outbound_allow=LOCAL_OUTBOUND_ALLOW,
        ),
    )
    before = RULES.get()
    yield tmp_path
    use_rules(before)


async def test_commands_find_the_database_in_the_facts(
    only_facts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    defs = only_facts / "hook.yaml"
    defs.write_text(RECEIVER)
    assert await asyncio.to_thread(main, ["migrate"]) == 0
    assert capsys.readouterr().out == "database schema is up to date\n"
    # a loopback receiver is accepted: the facts carry the stack's outbound allow list
    assert await asyncio.to_thread(main, ["apply", "-f", str(defs)]) == 0
    assert capsys.readouterr().out.splitlines()[0] == "Receiver/hook created (version 1)"
    assert await asyncio.to_thread(main, ["history", "Receiver/hook"]) == 0
    (line,) = capsys.readouterr().out.splitlines()
    assert line.split()[0] == "1" and "created" in line.split()


async def test_readme_report_names_the_current_period(
    only_facts: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = Path(__file__).resolve().parents[2]
    assert await asyncio.to_thread(main, ["apply", "-f", str(root / "examples")]) == 0
    capsys.readouterr()
    # the README's line, with no --period: the current one, never an empty past month
    before = datetime.now(UTC).strftime("%Y-%m")
    assert await asyncio.to_thread(main, ["report", "acme-checkout", "--format", "csv"]) == 0
    after = datetime.now(UTC).strftime("%Y-%m")
    rows = list(csv.DictReader(io.StringIO(capsys.readouterr().out)))
    assert [row["objective"] for row in rows] == ["availability", "latency"]
    assert {row["period"] for row in rows} <= {before, after}  # (a month may turn meanwhile)
