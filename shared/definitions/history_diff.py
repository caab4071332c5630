"""``slawatch history KIND/NAME --diff [FROM:TO]``: a unified diff between two stored
versions of a definition, each rendered as YAML with its keys in stored order.

Pure: the versions come in, the diff text goes out (``shared.definitions.cli`` reads
the database and prints).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from typing import Any

import yaml

from shared.errors import ConfigError


def as_yaml(document: dict[str, Any] | None) -> str:
    """A version's document as YAML (keys in stored order); a deletion is empty."""
    return "" if document is None else yaml.safe_dump(document, sort_keys=False)


def pick(numbers: Sequence[int], spec: str) -> tuple[int | None, int]:
    """The (from, to) versions ``spec`` names: ``""`` the last two, ``N`` version N
    against the one before it, ``A:B`` those two. ``from`` is None before the first."""
    if not numbers:
        raise ConfigError("no versions to compare")
    if not spec:
        newer = numbers[-1]
        older = numbers[-2] if len(numbers) > 1 else None
        return older, newer
    first, colon, second = spec.partition(":")
    try:
        chosen = [int(first)] if not colon else [int(first), int(second)]
    except ValueError:
        raise ConfigError(f"--diff takes N or FROM:TO (version numbers), not {spec!r}") from None
    for number in chosen:
        if number not in numbers:
            known = f"versions {numbers[0]} to {numbers[-1]}"
            raise ConfigError(f"there is no version {number} ({known})")
    if colon:
        return chosen[0], chosen[1]
    index = numbers.index(chosen[0])
    return (numbers[index - 1] if index else None), chosen[0]


def unified(
    ref: str,
    documents: dict[int, dict[str, Any] | None],
    older: int | None,
    newer: int,
) -> str:
    """The diff of ``ref``'s version ``older`` (None: nothing yet) to ``newer``."""
    before = as_yaml(documents[older]) if older is not None else ""
    lines = difflib.unified_diff(
        before.splitlines(keepends=True),
        as_yaml(documents[newer]).splitlines(keepends=True),
        fromfile=f"{ref} version {older}" if older is not None else "/dev/null",
        tofile=f"{ref} version {newer}",
    )
    return "".join(lines)
