"""The connection facts ``slawatch up`` leaves in its data directory: written 0600,
read back, stale when the process that wrote them is gone, never used then."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

from shared import stackfacts
from shared.errors import ConfigError
from shared.settings import Settings
from shared.stackfacts import FactsInvalid, StackFacts


def facts(**overrides: object) -> StackFacts:
    values: dict[str, object] = {
        "pid": os.getpid(),
        "process_start": stackfacts.process_start(os.getpid()) or "",
        "database_url": "postgresql://postgres:pw@127.0.0.1:15432/postgres",
        "kafka_bootstrap": "127.0.0.1:19092",
        "services": {
            "ingest": "http://127.0.0.1:18080",
            "evaluator": "http://127.0.0.1:18081",
            "notifier": "http://127.0.0.1:18082",
        },
        "admin_key_file": "/data/admin.key",
        "outbound_allow": "127.0.0.1/32, ::1/128",
    }
    values.update(overrides)
    return StackFacts(**values)  # type: ignore[arg-type]


@pytest.fixture
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("SLAWATCH_"):
            monkeypatch.delenv(name)


def test_written_0600_and_read_back(tmp_path: Path) -> None:
    path = stackfacts.facts_path(tmp_path)
    written = facts()
    stackfacts.write(path, written)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert StackFacts.from_json(path.read_text(), path) == written
    assert stackfacts.find(tmp_path).facts == written
    assert [p.name for p in tmp_path.iterdir()] == ["stack.json"]  # no temporary left


def test_rewrite_keeps_0600_even_over_a_wider_file(tmp_path: Path) -> None:
    path = stackfacts.facts_path(tmp_path)
    path.write_text("{}")
    path.chmod(0o644)
    stackfacts.write(path, facts())
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_current_process_names_this_process(tmp_path: Path) -> None:
    made = stackfacts.current_process_facts(
        database_url="postgresql://x@h/db",
        kafka_bootstrap="h:9092",
        services={},
        admin_key_file=Path("rel/admin.key"),
        data_dir=tmp_path,
        probe=lambda pid: "777",
    )
    assert made.pid == os.getpid() and made.process_start == "777"
    assert Path(made.admin_key_file).is_absolute()


def test_a_dead_process_makes_the_file_stale(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()  # reaped: its pid runs nothing now
    stackfacts.write(stackfacts.facts_path(tmp_path), facts(pid=child.pid, process_start="1"))
    found = stackfacts.find(tmp_path)
    assert found.facts is None
    assert found.stale is not None and f"pid {child.pid}" in found.stale


def test_a_reused_pid_makes_the_file_stale(tmp_path: Path) -> None:
    stackfacts.write(stackfacts.facts_path(tmp_path), facts(pid=4242, process_start="100"))
    assert stackfacts.find(tmp_path, probe=lambda pid: "200").facts is None
    assert stackfacts.find(tmp_path, probe=lambda pid: "100").facts is not None
    assert stackfacts.find(tmp_path, probe=lambda pid: None).facts is None
    # no start time to compare (no /proc): the pid alone decides
    assert stackfacts.find(tmp_path, probe=lambda pid: "").facts is not None


@pytest.mark.parametrize(
    ("text", "says"),
    [
        ("{", "is not JSON"),
        ('{"version": 2}', "not a version 1 stack file"),
        ('{"version": 1, "pid": 1}', "lacks a valid 'database_url'"),
        ('{"version": 1, "pid": "x", "database_url": "", "kafka_bootstrap": ""}', "lacks"),
    ],
)
def test_an_unreadable_file_is_named(tmp_path: Path, text: str, says: str) -> None:
    stackfacts.facts_path(tmp_path).write_text(text)
    with pytest.raises(FactsInvalid) as caught:
        stackfacts.find(tmp_path)
    assert says in str(caught.value) and str(stackfacts.facts_path(tmp_path)) in str(caught.value)


def test_remove_only_deletes_the_file_of_its_own_process(tmp_path: Path) -> None:
    path = stackfacts.facts_path(tmp_path)
    stackfacts.write(path, facts(pid=os.getpid() + 1))
    stackfacts.remove(path)  # a second `up` that failed keeps the running one's file
    assert path.exists()
    stackfacts.remove(path, pid=os.getpid() + 1)
    assert not path.exists()
    stackfacts.remove(path)  # already gone: nothing to do


def test_facts_fill_only_what_the_environment_left_unset(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(tmp_path))
    stackfacts.write(stackfacts.facts_path(tmp_path), facts())
    filled = stackfacts.locate(Settings()).settings
    assert filled.database_url == "postgresql://postgres:pw@127.0.0.1:15432/postgres"
    assert filled.kafka_bootstrap == "127.0.0.1:19092"
    assert (filled.ingest_port, filled.evaluator_port, filled.notifier_port) == (
        18080,
        18081,
        18082,
    )
    assert filled.outbound_allow == "127.0.0.1/32, ::1/128"

    monkeypatch.setenv("SLAWATCH_DATABASE_URL", "postgresql://mine@db/x")
    monkeypatch.setenv("SLAWATCH_INGEST_PORT", "9999")
    monkeypatch.setenv("SLAWATCH_OUTBOUND_ALLOW", "10.0.0.0/8")
    located = stackfacts.locate(Settings())
    assert located.settings.database_url == "postgresql://mine@db/x"
    assert located.service_url("ingest") == "http://127.0.0.1:9999"
    assert located.service_url("notifier") == "http://127.0.0.1:18082"
    assert located.settings.outbound_allow == "10.0.0.0/8"
    assert located.admin_key_file() == Path("/data/admin.key")


def test_without_a_stack_the_error_names_the_setting(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(tmp_path))
    located = stackfacts.locate(Settings())
    assert located.admin_key_file() == tmp_path / "admin.key"
    with pytest.raises(ConfigError) as caught:
        located.require_database()
    assert str(caught.value) == (
        "SLAWATCH_DATABASE_URL is not set and no local stack is running (start the local"
        f" stack with `make run`; it leaves {tmp_path / 'stack.json'})"
    )
    stackfacts.write(stackfacts.facts_path(tmp_path), facts(pid=4242, process_start="1"))
    located = stackfacts.locate(Settings(), probe=lambda pid: None)
    with pytest.raises(ConfigError) as caught:
        located.require_kafka()
    assert str(caught.value) == (
        f"{tmp_path / 'stack.json'} is stale: the stack that wrote it (pid 4242) stopped;"
        " start the local stack with `make run`, or set SLAWATCH_KAFKA_BOOTSTRAP"
    )


def test_the_database_password_never_lands_in_the_facts(
    clean_env: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = "postgresql://postgres:s3cr%40t@127.0.0.1:15432/postgres"
    path = stackfacts.facts_path(tmp_path)
    made = stackfacts.current_process_facts(
        database_url=url,
        kafka_bootstrap="127.0.0.1:19092",
        services={},
        admin_key_file=tmp_path / "admin.key",
        data_dir=tmp_path,
    )
    stackfacts.write(path, made)
    assert "s3cr" not in path.read_text()
    kept = Path(made.database_password_file)
    assert kept == tmp_path / stackfacts.PASSWORD_FILE_NAME
    assert stat.S_IMODE(kept.stat().st_mode) == 0o600
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(tmp_path))
    assert stackfacts.locate(Settings()).settings.database_url == url
    stackfacts.remove(path)
    assert not kept.exists()  # a password kept for the stack goes with it


def test_the_embedded_password_file_is_named_not_copied(tmp_path: Path) -> None:
    embedded = tmp_path / "pgdata.password"
    embedded.write_text("pw\n")
    bare, where = stackfacts.split_password("postgresql://postgres:pw@h:1/db", tmp_path)
    assert (bare, where) == (
        "postgresql://postgres@h:1/db",
        str(embedded),
    )
    assert not (tmp_path / stackfacts.PASSWORD_FILE_NAME).exists()
    assert stackfacts.split_password("postgresql://u@h/db", tmp_path) == (
        "postgresql://u@h/db",
        "",
    )


def test_an_unreadable_password_file_is_one_line(tmp_path: Path) -> None:
    gone = facts(database_url="postgresql://u@h/db", database_password_file=str(tmp_path / "x"))
    with pytest.raises(ConfigError, match="set SLAWATCH_DATABASE_URL"):
        stackfacts.database_url(gone)
