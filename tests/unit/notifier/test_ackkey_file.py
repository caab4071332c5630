"""The ack-link key file: made 0600 on first use, reused after, never weakened."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from services.notifier.ackkey import KeyFileInvalid, read_or_create


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_made_once_with_0600(tmp_path: Path) -> None:
    path = tmp_path / "data" / "ack-link.key"
    first = read_or_create(path)
    assert len(first) >= 32 and mode(path) == 0o600
    assert read_or_create(path) == first
    assert read_or_create(path, "x" * 40) == first  # an existing file wins
    assert [p.name for p in path.parent.iterdir()] == ["ack-link.key"]  # no temporary left


def test_initial_key_kept_for_the_links_already_sent(tmp_path: Path) -> None:
    assert read_or_create(tmp_path / "k", "legacy-key-" + "z" * 32) == b"legacy-key-" + b"z" * 32


def test_loose_permissions_are_tightened(tmp_path: Path) -> None:
    path = tmp_path / "k"
    path.write_text("k" * 40)
    path.chmod(0o644)
    assert read_or_create(path) == b"k" * 40
    assert mode(path) == 0o600


def test_no_symlink_and_no_short_key(tmp_path: Path) -> None:
    (tmp_path / "short").write_text("abc")
    with pytest.raises(KeyFileInvalid):
        read_or_create(tmp_path / "short")
    (tmp_path / "elsewhere").write_text("e" * 40)
    (tmp_path / "link").symlink_to(tmp_path / "elsewhere")
    with pytest.raises(OSError):
        read_or_create(tmp_path / "link")
