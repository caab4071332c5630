"""The README's commands that read the shipped samples run as written, from the
checkout, against the files under examples/samples/."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"


def readme_commands() -> list[list[str]]:
    """Every ``.venv/bin/slawatch`` command of a sh block that names a sample file:
    continuations joined, comments and ``[optional]`` parts dropped."""
    text = README.read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.DOTALL):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#.*$", "", line)
            line = re.sub(r"\[[^\]]*\]", "", line).strip()
            if line.startswith(".venv/bin/slawatch") and "examples/samples/" in line:
                commands.append(shlex.split(line))
    return commands


def run(argv: list[str], tmp_path: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    env["SLAWATCH_DATA_DIR"] = str(tmp_path)  # no stack: the samples need none
    env["SLAWATCH_OUTBOUND_ALLOW"] = "127.0.0.1"  # what the README says validate needs
    return subprocess.run(
        [str(ROOT / argv[0]), *argv[1:]],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_every_sample_command_is_found() -> None:
    names = [argv[1] for argv in readme_commands()]
    assert names == ["import", "source", "backtest"]
    for argv in readme_commands():
        for word in argv:
            if word.startswith("examples/"):
                assert (ROOT / word).exists(), word


@pytest.mark.parametrize("argv", readme_commands(), ids=lambda argv: argv[1])
def test_sample_command_runs_as_written(argv: list[str], tmp_path: Path) -> None:
    done = run(argv, tmp_path)
    assert done.returncode == 0, done.stderr
    assert "Traceback" not in done.stderr
    if argv[1] == "import":
        assert "kind: Agreement" in done.stdout and "target: 0.999" in done.stdout
        assert done.stderr.startswith("converted: 1 Agreement, 1 Service")
    elif argv[1] == "source":
        assert done.stdout.splitlines()[-1] == (
            "source shop-orders: 3 record(s), 3 event(s), 0 rejected"
        )
        assert '"outcome":"bad","value":1210.0' in done.stdout  # the 503
    else:
        summary = done.stderr.splitlines()  # the breach events go to stdout
        assert summary[-1] == "240 events, 0 late, 0 duplicates, 3 breach events"
        opened = [line.split()[0] for line in summary if "2026-12-01T10:" in line]
        assert opened == ["acme-checkout/availability", "acme-checkout/latency"]
        kinds = [json.loads(line)["kind"] for line in done.stdout.splitlines()]
        assert kinds == ["breach.opened", "breach.resolved", "breach.opened"]


def test_validate_of_the_examples_as_the_readme_says(tmp_path: Path) -> None:
    done = run([".venv/bin/slawatch", "validate", "examples/"], tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stdout.endswith(" document(s) valid\n")
