"""Escalation: extra notifications while a breach stays unacknowledged (pure planning).

A route's ``escalate`` steps are planned when the breach opens: step ``n`` becomes
outbox rows of kind ``escalation.<n>`` for its receivers, due ``after`` the moment
the opening was recorded. When such a row comes due, the worker sends it only if the
breach is still open and not acknowledged; otherwise the row ends ``cancelled``. An
acknowledgement and a resolution also cancel every pending step at once.

    t0 opened ──after₁──▶ step 1 ──▶ … ──afterₙ──▶ step n      (each unless acked/resolved)

With ``escalateEvery: 30m`` the steps repeat, shifted by 30 minutes each cycle, until
the breach is acknowledged or resolved, for at most ``escalateCycles`` cycles (10):
the rows are planned up front, so the bound keeps the outbox finite.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from services.notifier.message import ESCALATION_PREFIX
from shared.definitions.model import Route
from shared.timeutil import parse_duration_ms


@dataclass(frozen=True)
class PlannedStep:
    kind: str
    receivers: tuple[str, ...]
    due_ms: int


def plan(routes: Sequence[Route], opened_recorded_ms: int) -> list[PlannedStep]:
    """Escalation steps of the routes that took an opening; numbered across routes in
    order, so kinds stay unique per breach."""
    steps: list[PlannedStep] = []
    for taken in routes:
        every = parse_duration_ms(taken.escalate_every) if taken.escalate_every else None
        cycles = taken.escalate_cycles if every is not None else 1
        for cycle in range(cycles):
            offset = cycle * (every or 0)
            for step in taken.escalate:
                steps.append(
                    PlannedStep(
                        kind=f"{ESCALATION_PREFIX}{len(steps) + 1}",
                        receivers=tuple(step.receivers),
                        due_ms=opened_recorded_ms + offset + parse_duration_ms(step.after),
                    )
                )
    return steps


def is_escalation(kind: str) -> bool:
    return kind.startswith(ESCALATION_PREFIX)
