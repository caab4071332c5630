"""Quantile sketch (1 % relative error against the exact quantile) and the quantile
objective against a brute-force reference over random streams."""

from __future__ import annotations

import math

from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.objectives.quantile import CompiledQuantile
from services.evaluator.sketch import ALPHA, QuantileWindow, key_of, quantile, rank, value_of
from shared.definitions.model import QuantileObjective
from shared.schemas import Breach
from tests.unit.evaluator.factories import T0, agreement, event

values = st.one_of(
    st.floats(min_value=1e-6, max_value=1e9, allow_nan=False),
    st.floats(min_value=-1e6, max_value=-1e-6, allow_nan=False),
    st.just(0.0),
)


@settings(max_examples=60, deadline=None)
@given(st.lists(values, min_size=1, max_size=300), st.floats(min_value=0.01, max_value=0.999))
def test_sketch_within_one_percent_of_the_exact_quantile(data: list[float], q: float) -> None:
    bins: dict[int, int] = {}
    for v in data:
        bins[key_of(v)] = bins.get(key_of(v), 0) + 1
    exact = sorted(data)[rank(q, len(data)) - 1]
    got = quantile(bins, q, len(data))
    assert got is not None
    assert math.isclose(got, exact, rel_tol=ALPHA) or abs(got - exact) <= 1e-9


def test_bin_values_ordered_like_keys() -> None:
    keys = sorted({key_of(v) for v in (-1e6, -3.0, -1e-3, 0.0, 1e-3, 3.0, 1e6)})
    assert [value_of(k) for k in keys] == sorted(value_of(k) for k in keys)


def brute_window(points: list[tuple[int, float]], now: int, window: QuantileWindow) -> list[float]:
    """Values whose bucket lies in the window at ``now`` (the window's own definition)."""
    head = now // window.bucket_ms
    return sorted(v for t, v in points if head - window.size < t // window.bucket_ms <= head)


@settings(max_examples=40, deadline=None)
@given(
    st.lists(
        st.tuples(st.integers(min_value=0, max_value=600_000), st.floats(1.0, 5_000.0)),
        min_size=1,
        max_size=150,
    )
)
def test_window_matches_brute_force(points: list[tuple[int, float]]) -> None:
    window = QuantileWindow(60_000, threshold=300.0)
    kept: list[tuple[int, float]] = []
    newest: int | None = None
    for t, v in points:
        if window.add(t, v):
            kept.append((t, v))
        newest = t if newest is None else max(newest, t)
        inside = brute_window(kept, newest, window)
        assert window.valid == len(inside)
        assert window.good == sum(1 for x in inside if value_of(key_of(x)) <= 300.0)
        if inside:
            exact = inside[rank(0.9, len(inside)) - 1]
            got = window.quantile(0.9)
            assert got is not None and math.isclose(got, exact, rel_tol=ALPHA)
    copy = QuantileWindow.from_dict(window.to_dict(), 60_000, 300.0)
    assert (copy.good, copy.valid, copy.bins) == (window.good, window.valid, window.bins)


def test_quantile_objective_opens_and_resolves() -> None:
    doc = agreement(
        kind="quantile",
        quantile=0.9,
        threshold=300,
        window="1m",
        good=None,
        target=None,
        alerting={"minEvents": 5},
    )
    objective = doc.spec.objectives[0]
    assert isinstance(objective, QuantileObjective)
    shard = CompiledQuantile(doc, objective, lambda: 0).new_shard()
    out: list[Breach] = []
    for i in range(20):
        out += shard.on_event(event(T0 + i * 1_000, None, value=100.0))
    assert out == []
    for i in range(20, 30):
        out += shard.on_event(event(T0 + i * 1_000, None, value=900.0))
    assert [b.kind for b in out] == ["breach.opened"]
    sli = out[0].windows[0].sli
    assert sli is not None and math.isclose(sli, 900.0, rel_tol=ALPHA)
    out += shard.advance(T0 + 200_000)
    assert [b.kind for b in out] == ["breach.opened", "breach.resolved"]
