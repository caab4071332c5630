"""The SLI and target in words (services.notifier.values): tables, and properties
against a reading-back of the text."""

from __future__ import annotations

import re

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier import values
from services.notifier.values import Measure, duration_text, measure_of, ratio_texts
from shared.definitions.model import Objective
from shared.schemas import WindowSli
from tests.unit.notifier.support import make_breach
from tests.unit.notifier.test_messages_by_kind import AGREEMENT


@pytest.mark.parametrize(
    ("sli", "target", "texts"),
    [
        (0.995, 0.9995, ("99.50 %", "99.95 %")),
        (0.98, 0.999, ("98.0 %", "99.9 %")),
        (0.5, 0.99, ("50.0 %", "99.0 %")),
        # rounding would read as the target: more digits
        (0.99949, 0.9995, ("99.949 %", "99.95 %")),
        # rounding would read as 100 %
        (0.99999, 0.999, ("99.999 %", "99.9 %")),
        (1.0, 0.999, ("100.0 %", "99.9 %")),
        (0.9995, 0.9995, ("99.95 %", "99.95 %")),
        (None, 0.99, ("n/a", "99.0 %")),
        (0.0, 0.99999, ("0.000 %", "99.999 %")),
    ],
)
def test_ratio_texts(sli: float | None, target: float, texts: tuple[str, str]) -> None:
    assert ratio_texts(sli, target) == texts


def _number(text: str) -> float:
    return float(text.removesuffix(" %"))


@given(
    st.floats(min_value=0.0, max_value=1.0),
    st.sampled_from([0.9, 0.99, 0.995, 0.999, 0.9995, 0.9999, 0.5, 0.95]),
)
def test_an_sli_below_target_never_reads_as_meeting_it(sli: float, target: float) -> None:
    sli_text, target_text = ratio_texts(sli, target)
    assert "e" not in sli_text
    if sli < target and target - sli >= 1e-8:  # past 6 decimals of a percent: equal
        assert _number(sli_text) < _number(target_text)
    if sli < 1.0 and 1.0 - sli >= 1e-8:
        assert _number(sli_text) < 100.0


@pytest.mark.parametrize(
    ("ms", "text"),
    [
        (0, "0 ms"),
        (0.5, "0.5 ms"),
        (512, "512 ms"),
        (512.4, "512 ms"),
        (999.6, "1 s"),
        (1_520, "1.52 s"),
        (42_000, "42 s"),
        (59_990, "1 m"),
        (120_000, "2 m"),
        (250_000, "4 m 10 s"),
        (3_600_000, "1 h"),
        (12_000_000, "3 h 20 m"),
        (90_061_000, "1 d 1 h"),
        (-5_000, "-5 s"),
    ],
)
def test_duration_text(ms: float, text: str) -> None:
    assert duration_text(ms) == text


_UNIT_MS = {"d": 86_400_000, "h": 3_600_000, "m": 60_000, "s": 1000, "ms": 1}


def _read_back(text: str) -> tuple[float, int]:
    """The duration a text says, and the size of its smallest unit."""
    parts = re.findall(r"([\d.]+) (d|h|m|s|ms)\b", text)
    assert 1 <= len(parts) <= 2, text
    return sum(float(n) * _UNIT_MS[u] for n, u in parts), _UNIT_MS[parts[-1][1]]


@given(st.floats(min_value=0.0, max_value=400 * 86_400_000.0))
def test_a_duration_reads_back_within_its_smallest_unit(ms: float) -> None:
    said, unit = _read_back(duration_text(ms))
    # 3 significant digits below a minute; whole units (rounded to the second) above
    tolerance = max(unit, 0.005 * ms, 0.5) if ms < 60_000 else unit + 500
    assert abs(said - ms) <= tolerance


def _objective(name: str) -> Objective:
    return next(o for o in AGREEMENT.spec.objectives if o.name == name)


@pytest.mark.parametrize(
    ("rule", "target", "objective", "measure"),
    [
        ("threshold", 0.999, None, Measure("ratio")),
        ("burn-rate", 0.999, None, Measure("ratio")),
        ("budget", 0.999, None, Measure("ratio")),
        ("threshold", 300.0, None, Measure("quantile")),  # no ratio target is ≥ 1
        ("threshold", 300.0, "latency-p99", Measure("quantile", quantile=0.99)),
        # a quantile threshold below 1 (e.g. seconds): only the definition tells
        ("threshold", 0.5, "latency-p99", Measure("quantile", quantile=0.99)),
        ("threshold", 0.5, None, Measure("ratio")),
        ("freshness", 120_000.0, None, Measure("freshness")),
        ("freshness", 120_000.0, "heartbeat", Measure("freshness")),
        ("deadline", 1.0, None, Measure("deadline")),
        ("deadline", 1.0, "response", Measure("deadline", calendar="office")),
        # redefined as another kind since: the breach's rule wins
        ("deadline", 1.0, "latency-p99", Measure("deadline")),
    ],
)
def test_measure_of(rule: str, target: float, objective: str | None, measure: Measure) -> None:
    breach = make_breach(rule=rule, windows=[WindowSli(window="5m", sli=0.1, target=target)])
    assert measure_of(breach, None if objective is None else _objective(objective)) == measure


def test_words_of_each_kind_edge() -> None:
    resolved = make_breach(
        kind="breach.resolved",
        rule="freshness",
        windows=[WindowSli(window="2m", sli=600_000.0, target=120_000.0)],
    )
    [w] = values.window_texts(resolved, Measure("freshness"))
    assert w.text == "no event for 10 m (allowed 2 m), events again since"
    deadline = make_breach(
        rule="deadline",
        group={"entity": "T-9"},
        windows=[WindowSli(window="15m", sli=0.5, target=1.0)],  # no counts: from the label
    )
    [w] = values.window_texts(deadline, Measure("deadline"))
    assert w.text == "entity T-9: 7 m 30 s of 15 m used (50 %), around the clock"
    assert (w.sli_text, w.target_text) == ("7 m 30 s (50 %)", "15 m")
    quantile = make_breach(windows=[WindowSli(window="5m", sli=None, target=2.5)])
    [w] = values.window_texts(quantile, Measure("quantile", quantile=0.999, unit="s"))
    assert w.text == "p99.9 n/a, threshold 2.5 s over 5m"
    [w] = values.window_texts(quantile, Measure("quantile", quantile=0.5, unit="B"))
    assert w.text == "p50 n/a, threshold 2.5 B over 5m"
    assert values.budget_text(0.25) == "25.0 %"
    assert values.budget_text(-0.5) == "-50.0 % (overspent)"
    assert values.budget_text(None) is None
