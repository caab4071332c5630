"""``slawatch completion``: the script is made from the CLI's parser and completes as
a person types, run in a real bash (zsh runs the same function through bashcompinit;
checked when zsh is installed)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from services.cli import parser
from services.completion import bash_script, describe, zsh_script


def complete(script: str, line: str, tmp_path: Path) -> list[str]:
    """What bash offers for ``line`` (the cursor at its end) with ``script`` loaded."""
    words = line.split(" ")
    program = tmp_path / "complete.sh"
    program.write_text(
        script
        + "\nCOMP_WORDS=("
        + " ".join(f"'{w}'" for w in words)
        + f")\nCOMP_CWORD={len(words) - 1}\n_slawatch_complete\n"
        + 'printf "%s\\n" "${COMPREPLY[@]}"\n'
    )
    done = subprocess.run(
        ["bash", "--norc", str(program)], capture_output=True, text=True, check=True
    )
    return [w for w in done.stdout.splitlines() if w]


@pytest.fixture(scope="module")
def script() -> str:
    return bash_script(parser())


@pytest.mark.parametrize(
    ("line", "offered"),
    [
        ("slawatch br", ["breaches"]),
        ("slawatch ke", ["keys"]),
        ("slawatch keys ", ["create", "list", "revoke"]),
        ("slawatch keys create --na", ["--name"]),
        ("slawatch keys list -o ", ["table", "json", "yaml"]),
        ("slawatch breaches --status ", ["open", "resolved", "all"]),
        ("slawatch report acme --format c", ["csv"]),
        ("slawatch completion ", ["bash", "zsh"]),
        ("slawatch import ", ["openslo"]),
        ("slawatch import openslo ", []),  # file names: left to bash's default
        ("slawatch validate ", []),
        ("slawatch history --d", ["--diff"]),
    ],
)
def test_bash_completes_as_typed(
    script: str, line: str, offered: list[str], tmp_path: Path
) -> None:
    assert complete(script, line, tmp_path) == offered


def test_every_subcommand_is_known() -> None:
    root = describe(parser())
    assert {"up", "apply", "breaches", "status", "keys", "completion"} <= set(root.subcommands)
    assert set(root.subcommands["keys"].subcommands) == {"create", "list", "revoke"}


def test_zsh_loads_the_same_function(tmp_path: Path) -> None:
    text = zsh_script(parser())
    assert "bashcompinit" in text and "complete -o default -F _slawatch_complete slawatch" in text
    if shutil.which("zsh") is None:
        pytest.skip("zsh is not installed (Debian package zsh; .ci/run installs it)")
    loaded = tmp_path / "load.zsh"
    loaded.write_text(text + "\nwhence -w _slawatch_complete\n")
    done = subprocess.run(["zsh", "-f", str(loaded)], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "_slawatch_complete: function" in done.stdout
