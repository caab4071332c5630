"""``make bench`` runs ``python -m bench`` without arguments: every benchmark."""

from __future__ import annotations

import pytest

from bench.__main__ import chosen_names, discover


def test_no_arguments_choose_every_benchmark() -> None:
    assert chosen_names([], ["notifier", "ingest"]) == ["ingest", "notifier"]
    assert chosen_names([], discover()) == sorted(discover())
    assert {"ingest", "evaluator", "notifier"} <= set(discover())


def test_named_benchmarks_run_in_the_order_given_once() -> None:
    assert chosen_names(["notifier", "ingest", "notifier"], ["ingest", "notifier"]) == [
        "notifier",
        "ingest",
    ]


def test_an_unknown_name_is_refused_naming_the_choices(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        chosen_names(["ingset"], ["ingest", "notifier"])
    assert exited.value.code == 2
    assert "unknown benchmark ingset (choose from ingest, notifier)" in capsys.readouterr().err
