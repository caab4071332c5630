"""Escalation planning as a table: step kinds, receivers and due times."""

from __future__ import annotations

from typing import Any

import pytest

from services.notifier.escalation import plan
from shared.definitions.model import Route

M = 60_000


def route(steps: list[tuple[str, str]], **extra: Any) -> Route:
    return Route.model_validate(
        {
            "receivers": ["first"],
            "escalate": [{"after": a, "receivers": [r]} for a, r in steps],
            **extra,
        }
    )


@pytest.mark.parametrize(
    ("routes", "expected"),
    [
        pytest.param([route([])], [], id="no steps"),
        pytest.param(
            [route([("5m", "b"), ("15m", "c")])],
            [("escalation.1", "b", 5 * M), ("escalation.2", "c", 15 * M)],
            id="steps after the opening",
        ),
        pytest.param(
            [route([("5m", "b")]), route([("1m", "c")])],
            [("escalation.1", "b", 5 * M), ("escalation.2", "c", 1 * M)],
            id="numbered across routes",
        ),
        pytest.param(
            [route([("5m", "b"), ("10m", "c")], escalateEvery="30m", escalateCycles=3)],
            [
                ("escalation.1", "b", 5 * M),
                ("escalation.2", "c", 10 * M),
                ("escalation.3", "b", 35 * M),
                ("escalation.4", "c", 40 * M),
                ("escalation.5", "b", 65 * M),
                ("escalation.6", "c", 70 * M),
            ],
            id="repeated every 30m, bounded",
        ),
    ],
)
def test_plan(routes: list[Route], expected: list[tuple[str, str, int]]) -> None:
    assert [(s.kind, s.receivers[0], s.due_ms) for s in plan(routes, 0)] == expected
