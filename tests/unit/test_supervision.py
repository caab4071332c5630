"""The restart decision of ``slawatch up``: backoff schedule and the stable reset."""

from __future__ import annotations

import pytest

from services.supervision import Restart, RestartPolicy, RestartTracker


@pytest.mark.parametrize(
    ("streak", "delay_ms"),
    [(1, 500), (2, 1_000), (3, 2_000), (4, 4_000), (6, 16_000), (7, 30_000), (500, 30_000)],
)
def test_delay_doubles_up_to_the_cap(streak: int, delay_ms: int) -> None:
    assert RestartPolicy().delay_ms(streak) == delay_ms


def test_a_streak_starts_at_one() -> None:
    with pytest.raises(ValueError, match="from 1"):
        RestartPolicy().delay_ms(0)


class FakeClock:
    """Time that moves only when the test says so."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


# (uptime before the exit in ms, expected restart) for one child, in order
SCHEDULE = [
    (2_000, Restart(delay_ms=500, count=1, streak=1)),
    (100, Restart(delay_ms=1_000, count=2, streak=2)),
    (59_999, Restart(delay_ms=2_000, count=3, streak=3)),  # just short of stable
    (60_000, Restart(delay_ms=500, count=4, streak=1)),  # stable: a new streak
    (0, Restart(delay_ms=1_000, count=5, streak=2)),
    (10, Restart(delay_ms=2_000, count=6, streak=3)),
    *[(10, Restart(delay_ms=500 * 2 ** (s - 1), count=s + 3, streak=s)) for s in range(4, 7)],
    (10, Restart(delay_ms=30_000, count=10, streak=7)),  # capped
]


def test_tracker_follows_the_schedule() -> None:
    clock = FakeClock()
    tracker = RestartTracker(RestartPolicy(), clock)
    for uptime, expected in SCHEDULE:
        clock.now += uptime
        decision = tracker.exited()
        assert decision == expected
        clock.now += decision.delay_ms  # the wait does not count as uptime
        tracker.started()
    assert tracker.count == len(SCHEDULE)


def test_policy_is_configurable() -> None:
    policy = RestartPolicy(initial_ms=100, factor=3, max_ms=1_000, stable_ms=5_000)
    assert [policy.delay_ms(s) for s in range(1, 5)] == [100, 300, 900, 1_000]
