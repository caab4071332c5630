"""``slawatch status``: one row per group of each objective with its state, the SLI
against the target in the objective's own unit and the budget left (pure; the whole
command against PostgreSQL and a served evaluator: tests/integration/test_status_cli.py)."""

from __future__ import annotations

from typing import Any

import pytest

from services.status_cli import api_key, measured, rows, states, table
from shared.errors import ConfigError
from tests.unit.evaluator.factories import agreement


def status(*groups: dict[str, Any]) -> dict[str, Any]:
    return {"objective_id": "x", "partitions": [0], "groups": list(groups)}


def test_a_row_per_group_with_its_state() -> None:
    checkout = agreement(groupBy=["customer"], target=0.995)
    answers = {
        "availability": status(
            {"group": {"customer": "globex"}, "sli": 0.999, "budget_remaining": 0.8},
            {
                "group": {"customer": "acme"},
                "sli": 0.5,
                "active_breach_id": "0123456789abcdef0123",
                "severity": "page",
                "budget_remaining": -1.5,
            },
        )
    }
    got = rows(states([checkout], lambda _a, o: answers.get(o)))
    assert got == [
        (
            "acme-checkout (SLA, shopco -> acme)",
            "availability (ratio)",
            "customer=acme",
            "breached page",
            "50.0 %",
            ">= 99.5 % over 1m",
            "-150.0 % (overspent)",
            "0123456789ab",
        ),
        (
            "acme-checkout (SLA, shopco -> acme)",
            "availability (ratio)",
            "customer=globex",
            "ok",
            "99.9 %",
            ">= 99.5 % over 1m",
            "80.0 %",
            "",
        ),
    ]
    # not loaded by the evaluator, or no group yet: one row, no data
    assert [r[3:5] for r in rows(states([checkout], lambda _a, _o: None))] == [("no data", "n/a")]


def test_each_kind_in_its_own_unit() -> None:
    latency = agreement(
        kind="quantile", quantile=0.99, threshold=300, good=None, target=None, window="5m"
    ).spec.objectives[0]
    assert measured(latency, {"sli": 512.0}) == ("p99 512 ms", "<= 300 ms over 5m")
    fresh = agreement(
        kind="freshness", maxSilence="2m", good=None, target=None, window=None, alerting=None
    ).spec.objectives[0]
    assert measured(fresh, None) == ("no event yet", "an event every 2 m")
    assert measured(fresh, {"event_time": 5}) == ("events seen", "an event every 2 m")


def test_table_is_plain_off_a_terminal() -> None:
    found = states([agreement()], lambda _a, _o: status({"group": {}, "sli": 1.0}))
    text = table(found, color=False)
    assert text.splitlines()[0].split()[:4] == ["AGREEMENT", "OBJECTIVE", "GROUP", "STATE"]
    assert "\x1b[" not in text
    assert table([], color=False) == "no agreements\n"


def test_the_key_comes_from_the_environment_or_the_stack(
    tmp_path: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("SLAWATCH_API_KEY", raising=False)
    key_file = tmp_path / "admin.key"
    with pytest.raises(ConfigError, match="set SLAWATCH_API_KEY"):
        api_key(key_file)
    key_file.write_text("sw_file\n")
    assert api_key(key_file) == "sw_file"
    monkeypatch.setenv("SLAWATCH_API_KEY", "sw_env")
    assert api_key(key_file) == "sw_env"
