"""``slawatch source test`` reading the Source from the database."""

from __future__ import annotations

import argparse
import asyncio
import io
from pathlib import Path

import pytest

from services.ingest import source_cli
from shared import db
from shared.models import Definition
from shared.settings import Settings

pytestmark = pytest.mark.integration

DOCUMENT = {
    "apiVersion": "slawatch/v1",
    "kind": "Source",
    "metadata": {"name": "stored"},
    "spec": {"topics": ["t"], "mapping": {"service": "$.svc", "outcome": "code == 'OK'"}},
}


async def _store(settings: Settings) -> None:
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session:
            session.add(Definition(kind="Source", name="stored", version=1, document=DOCUMENT))
            await session.commit()
    finally:
        await engine.dispose()


def test_source_from_the_database(settings: Settings, tmp_path: Path) -> None:
    asyncio.run(_store(settings))
    sample = tmp_path / "sample.ndjson"
    sample.write_text('{"svc": "billing", "code": "OK"}\n{"svc": "billing"}\n')
    out = io.StringIO()
    args = argparse.Namespace(source="stored", sample=sample, defs=None)
    assert source_cli.main(settings, args, out) == 1
    lines = out.getvalue().splitlines()
    assert '"service":"billing"' in lines[0] and '"outcome":"good"' in lines[0]
    assert lines[1:] == [
        "record 1: rejected (1 error(s))",
        "  - missing_field: outcome: $.code missing",
        "source stored: 2 record(s), 1 event(s), 1 rejected",
    ]
    missing = io.StringIO()
    args = argparse.Namespace(source="nope", sample=sample, defs=None)
    assert source_cli.main(settings, args, missing) == 1
    assert "no Source named 'nope' in the database" in missing.getvalue()
