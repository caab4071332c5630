"""``slawatch apply`` / ``history`` against real PostgreSQL: the printed diff, dry run,
prune, author and reason in the history."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from services.cli import main
from shared.settings import Settings

pytestmark = pytest.mark.integration

RECEIVER = """
apiVersion: slawatch/v1
kind: Receiver
metadata: {{name: {name}}}
spec: {{type: webhook, url: "http://127.0.0.1:9000/{path}"}}
"""


def write(tmp_path: Path, *docs: str) -> Path:
    file = tmp_path / "defs.yaml"
    file.write_text("---".join(docs))
    return file


def run(*argv: str) -> int:
    return main(list(argv))


@pytest.fixture
def database(settings: Settings, monkeypatch: pytest.MonkeyPatch) -> None:
    assert settings.database_url is not None
    monkeypatch.setenv("SLAWATCH_DATABASE_URL", settings.database_url)
    monkeypatch.setenv("USER", "ana")


async def test_apply_prints_the_diff_and_keeps_history(
    database: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def apply(*extra: str, docs: tuple[str, ...]) -> tuple[int, str]:
        code = run("apply", "-f", str(write(tmp_path, *docs)), *extra)
        return code, capsys.readouterr().out

    a = RECEIVER.format(name="a", path="a")
    b = RECEIVER.format(name="b", path="b")
    code, out = await asyncio.to_thread(apply, "--dry-run", docs=(a, b))
    assert code == 0 and "dry run: nothing stored" in out
    code, out = await asyncio.to_thread(apply, "--reason", "first", docs=(a, b))
    assert out.splitlines() == [
        "Receiver/a created (version 1)",
        "Receiver/b created (version 1)",
        "2 created, 0 changed, 0 unchanged, 0 deleted",
    ]
    changed = RECEIVER.format(name="a", path="new")
    code, out = await asyncio.to_thread(
        apply, "--prune", "--author", "bo", "--reason", "move a", docs=(changed,)
    )
    assert out.splitlines() == [
        "Receiver/a changed (version 2) (spec.url)",
        "Receiver/b deleted (version 2)",
        "0 created, 1 changed, 0 unchanged, 1 deleted",
    ]
    code, out = await asyncio.to_thread(apply, docs=(changed,))
    assert out.splitlines()[-1] == "0 created, 0 changed, 1 unchanged, 0 deleted"

    assert await asyncio.to_thread(run, "history", "Receiver/a") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split()[0] for line in lines] == ["1", "2"]
    assert lines[0].split()[3:] == ["created", "ana", "first"]
    assert lines[1].split()[3:] == ["changed", "bo", "move", "a"]
    assert await asyncio.to_thread(run, "history", "Receiver/a", "-o", "json") == 0
    listed = json.loads(capsys.readouterr().out)
    assert [(v["version"], v["change"], v["author"]) for v in listed] == [
        (1, "created", "ana"),
        (2, "changed", "bo"),
    ]
    assert listed[0]["created_at"].endswith("Z")
    assert await asyncio.to_thread(run, "history", "Receiver/a", "--version", "1") == 0
    shown = capsys.readouterr().out
    assert "url: http://127.0.0.1:9000/a" in shown
    # keys in the order of the definition, not the database's own
    assert [line.split(":")[0] for line in shown.splitlines() if not line.startswith(" ")] == [
        "apiVersion",
        "kind",
        "metadata",
        "spec",
    ]
    assert await asyncio.to_thread(run, "history", "Receiver/a", "--diff") == 0
    diff = capsys.readouterr().out.splitlines()
    assert diff[:2] == ["--- Receiver/a version 1", "+++ Receiver/a version 2"]
    assert "-  url: http://127.0.0.1:9000/a" in diff
    assert "+  url: http://127.0.0.1:9000/new" in diff
    assert await asyncio.to_thread(run, "history", "Receiver/b", "--diff", "1:2") == 0
    gone = capsys.readouterr().out.splitlines()
    assert gone[1] == "+++ Receiver/b version 2" and not any(g.startswith("+ ") for g in gone)
    assert await asyncio.to_thread(run, "history", "Receiver/a", "--diff", "7") == 2
    assert "there is no version 7 (versions 1 to 2)" in capsys.readouterr().err


async def test_apply_refuses_invalid_files(
    database: None, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = RECEIVER.format(name="a", path="a").replace("type: webhook", "type: webhok")
    code = await asyncio.to_thread(run, "apply", "-f", str(write(tmp_path, bad)))
    assert code == 1
    err = capsys.readouterr().err
    assert "spec.type: unknown type 'webhok'; did you mean 'webhook'?" in err
