"""Backoff: the ceiling doubles up to the max, jitter stays below it, Retry-After is a floor."""

from __future__ import annotations

import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.backoff import Backoff, parse_retry_after_ms

POLICY = Backoff(base_ms=500, max_ms=60_000)


@pytest.mark.parametrize(
    ("attempt", "ceiling"),
    [(0, 500), (1, 500), (2, 1_000), (3, 2_000), (7, 32_000), (8, 60_000), (1_000, 60_000)],
)
def test_ceiling(attempt: int, ceiling: int) -> None:
    assert POLICY.ceiling_ms(attempt) == ceiling


@pytest.mark.parametrize(
    ("rand", "attempt", "retry_after", "expected"),
    [
        (0.0, 3, None, 0),
        (0.5, 3, None, 1_000),
        (0.999, 1, None, 499),
        (0.5, 1, 10_000, 10_000),  # Retry-After longer than the jitter: honoured
        (0.5, 8, 1_000, 30_000),  # jitter longer than Retry-After: jitter
        (0.5, 1, 10**9, 3_600_000),  # absurd Retry-After: capped
        (0.5, 1, 0, 250),
    ],
)
def test_delay(rand: float, attempt: int, retry_after: int | None, expected: int) -> None:
    assert POLICY.delay_ms(attempt, lambda: rand, retry_after) == expected


@given(
    base=st.integers(1, 10_000),
    span=st.integers(0, 100_000),
    attempt=st.integers(1, 200),
    seed=st.integers(0, 2**32),
    retry_after=st.none() | st.integers(0, 10**7),
)
def test_delay_bounds(
    base: int, span: int, attempt: int, seed: int, retry_after: int | None
) -> None:
    policy = Backoff(base_ms=base, max_ms=base + span)
    delay = policy.delay_ms(attempt, random.Random(seed).random, retry_after)
    assert delay >= 0
    if retry_after:
        assert delay >= min(retry_after, policy.retry_after_cap_ms)
    else:
        assert delay < max(policy.ceiling_ms(attempt), 1)
        assert policy.ceiling_ms(attempt) == min(base * 2 ** (attempt - 1), base + span)


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (None, None),
        ("3", 3_000),
        (" 0 ", 0),
        ("-1", None),
        ("1.5", None),
        ("Wed, 21 Oct 2015 07:28:00 GMT", None),
        ("", None),
    ],
)
def test_parse_retry_after(header: str | None, expected: int | None) -> None:
    assert parse_retry_after_ms(header) == expected
