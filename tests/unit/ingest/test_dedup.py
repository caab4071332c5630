"""The recent-ids memory: bounded by count and by age."""

from __future__ import annotations

from services.ingest.dedup import RecentIds


def test_remembers_within_the_horizon_only() -> None:
    now = [0]
    recent = RecentIds(capacity=10, horizon_ms=100, clock=lambda: now[0])
    recent.add(["a", "b"])
    now[0] = 50
    recent.add(["c"])
    assert recent.seen("a") and recent.seen("c") and not recent.seen("x")
    now[0] = 100
    assert not recent.seen("a") and recent.seen("c")
    assert len(recent) == 1


def test_oldest_forgotten_past_capacity() -> None:
    recent = RecentIds(capacity=3, horizon_ms=1_000, clock=lambda: 0)
    recent.add(["a", "b", "c", "d"])
    assert [recent.seen(i) for i in "abcd"] == [False, True, True, True]
    recent.add(["b"])  # refreshed: now the newest
    recent.add(["e"])
    assert [recent.seen(i) for i in "bcde"] == [True, False, True, True]


def test_seen_of_a_batch() -> None:
    now = [0]
    recent = RecentIds(capacity=10, horizon_ms=100, clock=lambda: now[0])
    recent.add(["a", "b"])
    assert recent.seen_of(["a", "x", "b"]) == {"a", "b"}
    now[0] = 100
    assert recent.seen_of(["a", "b"]) == set()
