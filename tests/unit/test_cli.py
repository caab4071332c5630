"""The CLI finds the local stack by its facts file, and an expected failure is one line
naming what to set (never a traceback)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from services import cli
from services.receiver import local_ports
from shared import stackfacts
from shared.definitions.kinds.receivers import RULES, ReceiverRules, use_rules
from shared.definitions.load import load_paths
from shared.settings import Settings
from shared.stackfacts import StackFacts

ROOT = Path(__file__).resolve().parents[2]

#: every command that cannot run without PostgreSQL
NEEDS_DATABASE = [
    ["migrate"],
    ["apply", "-f", str(ROOT / "examples")],
    ["apply", "-f", str(ROOT / "examples"), "--dry-run"],
    ["history", "Agreement/acme-checkout"],
    ["report", "acme-checkout", "--period", "2026-11"],
    ["keys", "list"],
    ["keys", "create", "--name", "n", "--scope", "ingest:write"],
    ["keys", "revoke", "n"],
    ["source", "test", "--source", "shop-orders", "--sample", "s.ndjson"],
]


@pytest.fixture
def data_dir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    for name in list(os.environ):
        if name.startswith("SLAWATCH_"):
            monkeypatch.delenv(name)
    monkeypatch.setenv("SLAWATCH_DATA_DIR", str(tmp_path))
    before = RULES.get()
    yield tmp_path
    use_rules(before)  # main() installs its own rules; later tests keep the suite's


def test_receiver_hint_reads_the_port_of_the_example(data_dir: Path) -> None:
    use_rules(ReceiverRules.from_settings(Settings(outbound_allow=cli.LOCAL_OUTBOUND_ALLOW)))
    documents = load_paths([ROOT / "examples" / "checkout.yaml"])
    ports = local_ports(documents)
    assert ports and all(port == 9000 for _, port in ports)  # the example's URL says 9000


def closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_facts(data_dir: Path, *, pid: int | None = None, db_port: int = 1) -> Path:
    pid = os.getpid() if pid is None else pid
    path = stackfacts.facts_path(data_dir)
    stackfacts.write(
        path,
        StackFacts(
            pid=pid,
            process_start=stackfacts.process_start(pid) or "gone",
            database_url=f"postgresql://postgres:s3cret@127.0.0.1:{db_port}/postgres",
            kafka_bootstrap="127.0.0.1:1",
            services={"ingest": "http://127.0.0.1:18080"},
            admin_key_file=str(data_dir / "admin.key"),
            outbound_allow="127.0.0.1/32, ::1/128",
        ),
    )
    return path


def run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = cli.main(argv)
    return code, capsys.readouterr().err.splitlines()


@pytest.mark.parametrize("argv", NEEDS_DATABASE, ids=" ".join)
def test_no_setting_and_no_stack_names_the_setting(
    data_dir: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, err = run(argv, capsys)
    assert code == 2
    assert err == [
        "slawatch: SLAWATCH_DATABASE_URL is not set and no local stack is running (start"
        f" the local stack with `make run`; it leaves {data_dir / 'stack.json'})"
    ]


@pytest.mark.parametrize("argv", NEEDS_DATABASE[:4], ids=" ".join)
def test_a_stale_file_is_not_used(
    data_dir: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    path = write_facts(data_dir, pid=child.pid)
    code, err = run(argv, capsys)
    assert code == 2
    assert err == [
        f"slawatch: {path} is stale: the stack that wrote it (pid {child.pid}) stopped;"
        " start the local stack with `make run`, or set SLAWATCH_DATABASE_URL"
    ]


@pytest.mark.parametrize("argv", NEEDS_DATABASE[:6], ids=" ".join)
def test_facts_are_used_and_an_unreachable_database_is_one_line(
    data_dir: Path, argv: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    port = closed_port()
    path = write_facts(data_dir, db_port=port)
    code, err = run(argv, capsys)
    assert code == 2
    assert len(err) == 1, err
    assert err[0].startswith(
        f"slawatch: cannot reach PostgreSQL at postgresql://postgres:***@127.0.0.1:{port}"
        f"/postgres (from {path}): "
    )
    assert "s3cret" not in err[0]


def test_the_environment_wins_over_the_facts(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    write_facts(data_dir)
    port = closed_port()
    monkeypatch.setenv("SLAWATCH_DATABASE_URL", f"postgresql://me:pw@127.0.0.1:{port}/mine")
    code, err = run(["migrate"], capsys)
    assert code == 2
    assert err[0].startswith(
        f"slawatch: cannot reach PostgreSQL at postgresql://me:***@127.0.0.1:{port}/mine: "
    )


def test_validate_takes_the_stacks_outbound_allow_list(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # examples/ has a Receiver on loopback: only a stack that allows loopback reaches it
    code, err = run(["validate", str(ROOT / "examples")], capsys)
    assert code == 1 and "SLAWATCH_OUTBOUND_ALLOW" in "\n".join(err)
    write_facts(data_dir)
    assert cli.main(["validate", str(ROOT / "examples")]) == 0


def test_source_test_from_files_needs_no_database(
    data_dir: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = cli.main(
        [
            "source",
            "test",
            "--source",
            "nope",
            "--sample",
            os.devnull,
            "--defs",
            str(ROOT / "examples" / "services.yaml"),
        ]
    )
    assert code == 1
    assert "no Source named 'nope'" in capsys.readouterr().out


def test_a_bad_setting_is_one_line(
    data_dir: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SLAWATCH_INGEST_PORT", "many")
    code, err = run(["migrate"], capsys)
    assert code == 2 and len(err) == 1 and err[0].startswith("slawatch: SLAWATCH_INGEST_PORT: ")


def test_the_installed_script_prints_no_traceback(data_dir: Path) -> None:
    script = Path(sys.executable).parent / "slawatch"
    done = subprocess.run(
        [str(script), "apply", "-f", str(ROOT / "examples")],
        capture_output=True,
        text=True,
        env={**os.environ},
        timeout=60,
        check=False,
    )
    assert done.returncode == 2
    assert done.stderr.startswith("slawatch: SLAWATCH_DATABASE_URL is not set")
    assert "Traceback" not in done.stderr and done.stderr.count("\n") == 1


def test_command_path_is_runnable_as_printed(monkeypatch: pytest.MonkeyPatch) -> None:
    script = Path(sys.executable).parent / "slawatch"
    monkeypatch.setattr(sys, "argv", [str(script)])
    printed = cli.command_path()
    if printed != "slawatch":
        assert Path(printed).resolve() == script.resolve()
    done = subprocess.run(
        [printed, "receiver", "--help"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        cwd=Path.cwd(),
    )
    assert done.returncode == 0 and "--port" in done.stdout
