"""Circuit breaker transitions as a table, on an injected clock."""

from __future__ import annotations

import pytest

from services.notifier.breaker import CircuitBreakers

# (at ms, event) where event is "ok", "fail" (retriable), "perm" (not retriable),
# or "allow?" with the expected answer of allow() (None = may go, else retry-at).
Step = tuple[int, str, object]

CASES: list[tuple[str, list[Step]]] = [
    ("closed while under threshold", [(0, "fail", None), (1, "fail", None), (2, "allow?", None)]),
    (
        "opens at threshold, defers until open_ms",
        [(0, "fail", None), (1, "fail", None), (2, "fail", "opened"), (3, "allow?", 1_002)],
    ),
    (
        "permanent failures do not count",
        [(0, "perm", None), (1, "perm", None), (2, "perm", None), (3, "allow?", None)],
    ),
    (
        "a success resets the count",
        [(0, "fail", None), (1, "fail", None), (2, "ok", None), (3, "fail", None),
         (4, "allow?", None)],
    ),
    (
        "half-open lets one trial through; success closes",
        [
            (0, "fail", None), (0, "fail", None), (0, "fail", "opened"),
            (1_000, "allow?", None), (1_001, "allow?", 61_000), (1_002, "ok", "closed"),
            (1_003, "allow?", None),
        ],
    ),
    (
        "failures of attempts in flight while open change nothing",
        [
            (0, "fail", None), (0, "fail", None), (0, "fail", "opened"), (5, "fail", None),
            (6, "fail", None), (7, "allow?", 1_000),
        ],
    ),
    (
        "a failed trial reopens for twice as long",
        [
            (0, "fail", None), (0, "fail", None), (0, "fail", "opened"),
            (1_000, "allow?", None), (1_100, "fail", "opened"), (1_200, "allow?", 3_100),
            (3_100, "allow?", None), (3_200, "fail", "opened"), (3_300, "allow?", 7_200),
        ],
    ),
]  # fmt: skip


@pytest.mark.parametrize(("name", "steps"), CASES, ids=[c[0] for c in CASES])
def test_breaker(name: str, steps: list[Step]) -> None:
    breakers = CircuitBreakers(threshold=3, open_ms=1_000, max_open_ms=4_000)
    for at, event, expected in steps:
        if event == "allow?":
            assert breakers.allow("r", at) == expected, (name, at)
        else:
            change = breakers.record("r", event == "ok", event == "fail", at)
            assert change == expected, (name, at, event)


def test_receivers_are_independent() -> None:
    breakers = CircuitBreakers(threshold=1, open_ms=1_000)
    breakers.record("a", False, True, 0)
    assert breakers.allow("a", 1) == 1_000
    assert breakers.allow("b", 1) is None
    assert breakers.state("a", 1) == "open"
    assert breakers.state("a", 1_000) == "half-open"
    assert breakers.state("b", 1) == "closed"
