"""Which versions ``history --diff`` compares, and the diff it prints."""

from __future__ import annotations

import pytest

from shared.definitions.history_diff import pick, unified
from shared.errors import ConfigError


@pytest.mark.parametrize(
    ("numbers", "spec", "expected"),
    [
        ([1], "", (None, 1)),
        ([1, 2, 3], "", (2, 3)),
        ([1, 2, 3], "1", (None, 1)),
        ([1, 2, 3], "3", (2, 3)),
        ([1, 2, 3], "3:1", (3, 1)),
    ],
)
def test_pick(numbers: list[int], spec: str, expected: tuple[int | None, int]) -> None:
    assert pick(numbers, spec) == expected


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("4", r"there is no version 4 \(versions 1 to 3\)"),
        ("1:9", "there is no version 9"),
        ("x", "--diff takes N or FROM:TO"),
        ("1:", "--diff takes N or FROM:TO"),
    ],
)
def test_pick_refuses_with_one_line(spec: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        pick([1, 2, 3], spec)


def test_unified_keeps_key_order_and_shows_creation_and_deletion() -> None:
    v1 = {"kind": "Receiver", "metadata": {"name": "a"}, "spec": {"url": "http://x/1"}}
    v2 = {"kind": "Receiver", "metadata": {"name": "a"}, "spec": {"url": "http://x/2"}}
    docs = {1: v1, 2: v2, 3: None}
    assert unified("Receiver/a", docs, 1, 2).splitlines() == [
        "--- Receiver/a version 1",
        "+++ Receiver/a version 2",
        "@@ -2,4 +2,4 @@",
        " metadata:",
        "   name: a",
        " spec:",
        "-  url: http://x/1",
        "+  url: http://x/2",
    ]
    created = unified("Receiver/a", docs, None, 1).splitlines()
    assert created[0] == "--- /dev/null" and created[3] == "+kind: Receiver"
    deleted = unified("Receiver/a", docs, 2, 3).splitlines()
    assert all(line[0] in "-@" for line in deleted[2:])
    assert unified("Receiver/a", docs, 1, 1) == ""
