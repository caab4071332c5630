"""The listing commands' one renderer: aligned tables, colour only where it belongs,
JSON and YAML with keys in their order."""

from __future__ import annotations

import json

import pytest
import yaml

from shared import cliout

ROWS = [("a", "open"), ("bb", "resolved")]


def test_no_colour_in_a_pipe_or_with_no_color(monkeypatch: pytest.MonkeyPatch) -> None:
    alarming = lambda row: row[1] == "open"  # noqa: E731
    assert "\x1b[" not in cliout.table(("N", "S"), ROWS, empty="-", alarming=alarming)
    assert "\x1b[" in cliout.table(("N", "S"), ROWS, empty="-", alarming=alarming, color=True)
    monkeypatch.setenv("NO_COLOR", "1")
    assert "\x1b[" not in cliout.table(("N", "S"), ROWS, empty="-", alarming=alarming)


def test_columns_align_and_an_empty_listing_says_so() -> None:
    lines = cliout.table(("NAME", "STATE"), ROWS, empty="nothing").splitlines()
    assert {
        line.index(word) for line, word in zip(lines[2:], ("open", "resolved"), strict=True)
    } == {lines[0].index("STATE")}
    assert cliout.table(("N",), [], empty="nothing") == "nothing\n"


def test_json_and_yaml_keep_the_items_and_their_key_order() -> None:
    items = [{"z": 1, "a": "ü"}]
    assert json.loads(cliout.data(items, "json")) == items
    text = cliout.data(items, "yaml")
    assert yaml.safe_load(text) == items and text.index("z:") < text.index("a:")
