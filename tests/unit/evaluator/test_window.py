"""Window math against a brute-force reference (at bucket granularity, see window.py)."""

from __future__ import annotations

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.evaluator.window import SlidingWindow, bucket_width_ms


@pytest.mark.parametrize(
    ("window_ms", "bucket_ms", "size"),
    [
        (300_000, 1_000, 300),
        (3_600_000, 6_000, 600),
        (30 * 86_400_000, 4_320_000, 600),
        (7 * 86_400_000, 1_008_000, 600),
        (500, 500, 1),
        (1_500, 1_000, 2),
        (600_001, 1_001, 600),
    ],
)
def test_bucket_sizing(window_ms: int, bucket_ms: int, size: int) -> None:
    window = SlidingWindow(window_ms)
    assert (bucket_width_ms(window_ms), window.bucket_ms, window.size) == (
        bucket_ms,
        bucket_ms,
        size,
    )
    assert window.size <= 600


class Reference:
    """Every accepted event kept; counts recomputed from scratch."""

    def __init__(self, bucket_ms: int, size: int) -> None:
        self.w, self.n = bucket_ms, size
        self.head: int | None = None
        self.events: list[tuple[int, bool]] = []

    def advance(self, t: int) -> None:
        b = t // self.w
        self.head = b if self.head is None else max(self.head, b)

    def add(self, t: int, good: bool) -> bool:
        self.advance(t)
        assert self.head is not None
        if t // self.w <= self.head - self.n:
            return False
        self.events.append((t, good))
        return True

    def counts(self) -> tuple[int, int]:
        if self.head is None:
            return 0, 0
        inside = [g for t, g in self.events if self.head - self.n < t // self.w <= self.head]
        return sum(inside), len(inside)


operations = st.lists(
    st.tuples(
        st.sampled_from(["add", "add", "add", "advance", "roundtrip"]),
        st.integers(min_value=-20_000, max_value=25_000),
        st.booleans(),
    ),
    max_size=120,
)


@settings(max_examples=300, deadline=None)
@given(
    window_ms=st.integers(min_value=200, max_value=40_000),
    start=st.integers(min_value=0, max_value=10**13),
    ops=operations,
)
def test_window_matches_reference(
    window_ms: int, start: int, ops: list[tuple[str, int, bool]]
) -> None:
    window = SlidingWindow(window_ms)
    reference = Reference(window.bucket_ms, window.size)
    clock = start
    for op, delta, good in ops:
        t = max(0, clock + delta)
        if op == "add":
            assert window.add(t, good) == reference.add(t, good)
        elif op == "advance":
            window.advance(t)
            reference.advance(t)
        else:
            window = SlidingWindow.from_dict(
                orjson.loads(orjson.dumps(window.to_dict())), window_ms
            )
        clock = max(clock, t)
        assert (window.good, window.valid) == reference.counts()
        assert window.head == reference.head


def test_sli_and_expiry_boundaries() -> None:
    window = SlidingWindow(10_000)  # 10 buckets of 1 s
    assert window.sli is None and window.next_expiry_ms() is None
    window.add(1_000, good=False)
    window.add(1_500, good=True)
    assert (window.good, window.valid, window.sli) == (1, 2, 0.5)
    assert window.next_expiry_ms() == 2_000
    window.advance(10_999)  # bucket 1 is the oldest still inside
    assert window.valid == 2
    window.advance(11_000)  # bucket 1 leaves the counts and becomes the tail
    assert (window.valid, window.sli, window.next_expiry_ms()) == (0, None, 12_000)
    assert window.decision(11_000) == (pytest.approx(0.999 * 1), pytest.approx(0.999 * 2))
    window.advance(12_000)  # the tail leaves too
    assert window.next_expiry_ms() is None
    assert window.add(1_999, good=True) is False


def test_from_dict_rejects_another_shape() -> None:
    data = SlidingWindow(60_000).to_dict()
    with pytest.raises(ValueError, match="shape"):
        SlidingWindow.from_dict(data, 120_000)
