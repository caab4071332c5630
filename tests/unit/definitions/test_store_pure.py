"""Pure parts of the store: the changed-field diff and the catalog's by-kind view."""

from __future__ import annotations

import pytest

from shared.definitions.load import parse_document
from shared.definitions.model import Receiver
from shared.definitions.store import Catalog, changed_paths


@pytest.mark.parametrize(
    ("old", "new", "paths"),
    [
        ({"a": 1}, {"a": 1}, []),
        ({"a": 1}, {"a": 2}, ["a"]),
        ({"a": {"b": [1, 2]}}, {"a": {"b": [1, 3]}}, ["a.b[1]"]),
        ({"a": [1]}, {"a": [1, 2]}, ["a"]),
        ({"a": 1}, {"b": 1}, ["a", "b"]),
        ({"spec": {"objectives": [{"target": 0.9}]}}, {"spec": {"objectives": [{"target": 0.99}]}},
         ["spec.objectives[0].target"]),
    ],
)  # fmt: skip
def test_changed_paths(old: object, new: object, paths: list[str]) -> None:
    assert changed_paths(old, new) == paths


def test_catalog_by_kind_and_legacy_construction() -> None:
    hook = parse_document(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Receiver",
            "metadata": {"name": "hook"},
            "spec": {"type": "webhook", "url": "http://127.0.0.1:1/"},
        }
    )
    assert isinstance(hook, Receiver)
    by_hand = Catalog(agreements={}, receivers={"hook": hook})  # as older callers build it
    assert by_hand.of("Receiver") == {"hook": hook}
    assert by_hand.of("Party") == {}
    loaded = Catalog({}, {"hook": hook}, {"Receiver": {"hook": hook}})
    assert loaded.of("Receiver") == {"hook": hook}
