"""API numbers without float noise."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.numbers import tidy, tidy_or_none


@pytest.mark.parametrize(
    ("raw", "shown"),
    [(9.999999999999991, 10.0), (0.1 + 0.2, 0.3), (2 / 3, 0.666666666667), (-9.0, -9.0)],
)
def test_noise_goes(raw: float, shown: float) -> None:
    assert tidy(raw) == shown


@given(st.integers(0, 10**12), st.integers(1, 10**12))
def test_a_ratio_of_counts_stays_within_a_part_in_a_trillion(good: int, valid: int) -> None:
    ratio = good / valid
    assert tidy(ratio) == pytest.approx(ratio, rel=1e-11, abs=0)
    assert tidy_or_none(None) is None
