"""The stages before an attempt, with one ``now``: a table of rows and their verdicts."""

from __future__ import annotations

from typing import Any

import pytest

from services.notifier.breaker import CircuitBreakers
from services.notifier.message import GROUP_FLUSH, GroupNotification, Notification
from services.notifier.outbox import Claimed
from services.notifier.silencing import MuteWindow
from services.notifier.stages import Defer, Skip, Verdict, before_attempt
from tests.unit.notifier.support import T0, make_breach

NOW = T0 + 60_000
SILENCE = MuteWindow("Silence/db", {"service": "checkout"}, T0, T0 + 120_000)
ELSEWHERE = MuteWindow("Silence/other", {"service": "search"}, T0, T0 + 120_000)
OVER = MuteWindow("Silence/old", {"service": "checkout"}, T0 - 10, T0)
RESOLVED = make_breach(kind="breach.resolved", resolved_at=T0).model_dump()


def row(kind: str = "breach.opened", **overrides: Any) -> Claimed:
    values: dict[str, Any] = {
        "id": 1,
        "breach_id": make_breach().id,
        "kind": kind,
        "at": T0,
        "receiver": "hook",
        "attempt": 1,
        "payload": make_breach().model_dump(),
        "breach_status": "open",
    }
    values.update(overrides)
    return Claimed(**values)


def group(alerts: int) -> GroupNotification:
    note = Notification(
        breach=make_breach(),
        kind="breach.opened",
        at=T0,
        status_url="s",
        ack_url=None,
        console_url="c",
    )
    return GroupNotification("hook", "g", T0, tuple(note for _ in range(alerts)))


FLUSH = row(GROUP_FLUSH, breach_id="flush:7", payload={}, flush={"alerts": []})

# (name, row, group, windows, circuit open?, verdict)
CASES: list[tuple[str, Claimed, GroupNotification | None, list[MuteWindow], bool, Verdict]] = [
    ("an open breach's event goes", row(), None, [], False, None),
    ("an acked escalation is cancelled",
     row("escalation.1", acked_by="ann"), None, [], False,
     Skip("cancelled", "acknowledged by ann")),
    ("a resolved escalation is cancelled",
     row("escalation.1", breach_status="resolved"), None, [], False, Skip("cancelled", "resolved")),
    ("an ack does not cancel the opening itself", row(acked_by="ann"), None, [], False, None),
    ("a matching silence suppresses",
     row(), None, [ELSEWHERE, SILENCE], False, Skip("suppressed", "muted by Silence/db")),
    ("a silence of something else does not", row(), None, [ELSEWHERE], False, None),
    ("a silence that ended does not", row(), None, [OVER], False, None),
    ("a resolution to whoever was told of the opening passes a silence",
     row("breach.resolved", payload=RESOLVED, told=True), None, [SILENCE], False, None),
    ("a resolution to whoever was not told is suppressed",
     row("breach.resolved", payload=RESOLVED), None, [SILENCE], False,
     Skip("suppressed", "muted by Silence/db")),
    ("cancellation comes before silences",
     row("escalation.2", acked_by="ann"), None, [SILENCE], False,
     Skip("cancelled", "acknowledged by ann")),
    ("an open circuit defers", row(), None, [], True, Defer(T0 + 1_000)),
    ("a suppressed row never reaches the breaker",
     row(), None, [SILENCE], True, Skip("suppressed", "muted by Silence/db")),
    ("a flush with alerts left goes", FLUSH, group(2), [SILENCE], False, None),
    ("a flush with every alert muted is suppressed",
     FLUSH, group(0), [], False, Skip("suppressed", "every alert of the group muted")),
    ("a flush to an open circuit defers", FLUSH, group(1), [], True, Defer(T0 + 1_000)),
]  # fmt: skip


@pytest.mark.parametrize(
    ("name", "claimed", "flush", "windows", "open_circuit", "expected"),
    CASES,
    ids=[c[0] for c in CASES],
)
def test_before_attempt(
    name: str,
    claimed: Claimed,
    flush: GroupNotification | None,
    windows: list[MuteWindow],
    open_circuit: bool,
    expected: Verdict,
) -> None:
    breakers = CircuitBreakers(threshold=1, open_ms=1_000)
    if open_circuit:
        breakers.record("hook", False, True, T0)
        now = T0 + 500
    else:
        now = NOW
    assert before_attempt(claimed, flush, windows, breakers, now) == expected


def test_a_skipped_row_leaves_the_half_open_trial_to_the_next() -> None:
    breakers = CircuitBreakers(threshold=1, open_ms=1_000)
    breakers.record("hook", False, True, T0)
    half_open = T0 + 1_000
    skipped = before_attempt(row("escalation.1", acked_by="ann"), None, [], breakers, half_open)
    assert isinstance(skipped, Skip)
    assert before_attempt(row(), None, [], breakers, half_open) is None  # the trial
    assert before_attempt(row(), None, [], breakers, half_open) == Defer(half_open + 60_000)
