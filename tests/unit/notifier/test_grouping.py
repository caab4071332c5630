"""Grouping timing (Alertmanager semantics) as a table over an injected clock."""

from __future__ import annotations

import pytest

from services.notifier.grouping import GroupTiming, group_key, simulate
from tests.unit.notifier.support import make_breach

S = 1_000
M = 60 * S
H = 60 * M
TIMING = GroupTiming(wait_ms=30 * S, interval_ms=5 * M, repeat_ms=4 * H)

CASES = [
    pytest.param(
        [(0, "a", "firing")], 10 * M, [(30 * S, {"a": "firing"})], id="first flush after group_wait"
    ),
    pytest.param(
        [(0, "a", "firing"), (10 * S, "b", "firing")],
        10 * M,
        [(30 * S, {"a": "firing", "b": "firing"})],
        id="arrivals within group_wait go together",
    ),
    pytest.param(
        [(0, "a", "firing"), (30 * S, "b", "firing")],
        1 * M,
        [(30 * S, {"a": "firing", "b": "firing"})],
        id="arrival at the flush instant is included",
    ),
    pytest.param(
        [(0, "a", "firing"), (2 * M, "c", "firing")],
        10 * M,
        [(30 * S, {"a": "firing"}), (5 * M + 30 * S, {"a": "firing", "c": "firing"})],
        id="later arrival waits for the next group_interval tick",
    ),
    pytest.param(
        [(0, "a", "firing"), (6 * M, "c", "firing")],
        11 * M,
        [(30 * S, {"a": "firing"}), (10 * M + 30 * S, {"a": "firing", "c": "firing"})],
        id="ticks keep their phase; arrivals never move them",
    ),
    pytest.param(
        [(0, "a", "firing"), (1 * M, "a", "resolved")],
        10 * M,
        [(30 * S, {"a": "firing"}), (5 * M + 30 * S, {"a": "resolved"})],
        id="resolution sent on the next tick, then the group ends",
    ),
    pytest.param(
        [(0, "a", "firing"), (1 * M, "a", "resolved"), (20 * M, "b", "firing")],
        30 * M,
        [
            (30 * S, {"a": "firing"}),
            (5 * M + 30 * S, {"a": "resolved"}),
            (20 * M + 30 * S, {"b": "firing"}),
        ],
        id="a new group after the old one ended waits group_wait again",
    ),
    pytest.param(
        [(0, "a", "firing"), (0, "b", "firing"), (1 * M, "a", "resolved")],
        16 * M,
        [
            (30 * S, {"a": "firing", "b": "firing"}),
            (5 * M + 30 * S, {"a": "resolved", "b": "firing"}),
        ],
        id="a send carries the whole group; a resolved member leaves once sent",
    ),
    pytest.param(
        [
            (0, "a", "firing"),
            (0, "b", "firing"),
            (1 * M, "a", "resolved"),
            (6 * M, "b", "resolved"),
        ],
        16 * M,
        [
            (30 * S, {"a": "firing", "b": "firing"}),
            (5 * M + 30 * S, {"a": "resolved", "b": "firing"}),
            (10 * M + 30 * S, {"b": "resolved"}),
        ],
        id="the last resolution ends the group",
    ),
    pytest.param(
        [(0, "a", "firing"), (1 * M, "a", "resolved"), (1 * M, "b", "firing")],
        4 * H + 6 * M,
        [
            (30 * S, {"a": "firing"}),
            (5 * M + 30 * S, {"a": "resolved", "b": "firing"}),
            (4 * H + 5 * M + 30 * S, {"b": "firing"}),
        ],
        id="a repeat lists only the members still in the group",
    ),
    pytest.param(
        [(0, "a", "firing")],
        4 * H + 6 * M,
        [(30 * S, {"a": "firing"}), (4 * H + 30 * S, {"a": "firing"})],
        id="repeat on the first tick at or after repeat_interval",
    ),
    pytest.param(
        [(0, "a", "firing")],
        4 * H + 29 * S,
        [(30 * S, {"a": "firing"})],
        id="no repeat before repeat_interval has passed",
    ),
    pytest.param(
        [(0, "a", "firing"), (10 * S, "a", "resolved")],
        1 * H,
        [],
        id="resolved before the first flush: nothing sent, the group ends",
    ),
    pytest.param(
        [(0, "a", "firing"), (10 * S, "a", "resolved"), (20 * M, "b", "firing")],
        1 * H,
        [(20 * M + 30 * S, {"b": "firing"})],
        id="a group that sent nothing ended: a later breach starts a new one",
    ),
    pytest.param(
        [(0, "a", "firing"), (10 * S, "b", "firing"), (20 * S, "a", "resolved")],
        10 * M,
        [(30 * S, {"a": "resolved", "b": "firing"})],
        id="a first flush with a firing member carries the resolved one too",
    ),
    pytest.param(
        [(0, "a", "firing"), (2 * M, "b", "firing"), (3 * M, "b", "resolved"),
         (4 * M, "a", "resolved")],
        10 * M,
        [(30 * S, {"a": "firing"}), (5 * M + 30 * S, {"a": "resolved", "b": "resolved"})],
        id="after a send, a flush of only resolved members goes out",
    ),
]  # fmt: skip


@pytest.mark.parametrize(("changes", "until", "sends"), CASES)
def test_simulate(
    changes: list[tuple[int, str, str]], until: int, sends: list[tuple[int, dict[str, str]]]
) -> None:
    assert simulate(changes, TIMING, until) == sends  # type: ignore[arg-type]


def test_repeat_rounds_up_to_interval_ticks() -> None:
    timing = GroupTiming(wait_ms=0, interval_ms=7 * M, repeat_ms=20 * M)
    sends = simulate([(0, "a", "firing")], timing, 60 * M)
    assert [t for t, _ in sends] == [0, 21 * M, 42 * M]


@pytest.mark.parametrize(
    ("group_by", "key"),
    [
        ([], ""),
        (["customer"], "customer=acme"),
        (["service", "customer"], "customer=acme,service=checkout"),
        (["region"], "region="),
        (["..."], "breach=0123456789abcdef0123456789abcdef"),
    ],
)
def test_group_key(group_by: list[str], key: str) -> None:
    assert group_key(make_breach(), group_by) == key
