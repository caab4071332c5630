"""How lifecycle events move the stored breach, and the outbox's next-state decision."""

from __future__ import annotations

import pytest

from services.notifier.backoff import Backoff
from services.notifier.channels.base import DeliveryError, Reason
from services.notifier.lifecycle import resolved_at_of, status_of, supersedes
from services.notifier.outbox import Decision, decide
from tests.unit.notifier.support import T0, make_breach


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        ("breach.opened", "open"),
        ("breach.updated", "open"),
        ("budget.exhausted", "open"),
        ("deadline.warning", "open"),
        ("breach.resolved", "resolved"),
    ],
)
def test_status_of(kind: str, status: str) -> None:
    assert status_of(kind) == status


@pytest.mark.parametrize(
    ("new", "old", "expected"),
    [
        ((T0 + 1, "breach.updated"), (T0, "breach.opened"), True),
        ((T0, "breach.opened"), (T0 + 1, "breach.updated"), False),  # late replay
        ((T0, "breach.resolved"), (T0, "breach.opened"), True),  # same time: resolved wins
        ((T0, "breach.opened"), (T0, "breach.resolved"), False),
        ((T0, "breach.opened"), (T0, "breach.opened"), True),  # identical replay
    ],
)
def test_supersedes(new: tuple[int, str], old: tuple[int, str], expected: bool) -> None:
    assert supersedes(new[0], new[1], old[0], old[1]) is expected


def test_resolved_at() -> None:
    assert resolved_at_of(make_breach()) is None
    assert resolved_at_of(make_breach(kind="breach.resolved", at=T0 + 9)) == T0 + 9
    assert resolved_at_of(make_breach(kind="breach.resolved", at=T0 + 9, resolved_at=T0 + 5)) == (
        T0 + 5
    )


POLICY = Backoff(base_ms=100, max_ms=1_000)


def fail(retriable: bool, retry_after_ms: int | None = None) -> DeliveryError:
    reason = Reason.HTTP_5XX if retriable else Reason.HTTP_4XX
    return DeliveryError(reason, "x", retriable=retriable, retry_after_ms=retry_after_ms)


@pytest.mark.parametrize(
    ("attempt", "error", "expected"),
    [
        (1, None, Decision("delivered")),
        (8, None, Decision("delivered")),
        (1, fail(True), Decision("retry", 50)),
        (3, fail(True), Decision("retry", 200)),
        (2, fail(True, retry_after_ms=5_000), Decision("retry", 5_000)),
        (1, fail(False), Decision("dead")),
        (3, fail(True), Decision("retry", 200)),
        (4, fail(True), Decision("dead")),  # max attempts reached
    ],
)
def test_decide(attempt: int, error: DeliveryError | None, expected: Decision) -> None:
    assert decide(attempt, 4, error, POLICY, lambda: 0.5) == expected


def test_decision_status() -> None:
    assert [Decision(o).status for o in ("delivered", "retry", "dead")] == [
        "delivered",
        "pending",
        "dead",
    ]
