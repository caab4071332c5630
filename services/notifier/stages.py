"""The stages a claimed row passes before its attempt, with one ``now`` (pure).

The worker reads the clock once per row and hands it to each stage in order; the
first stage that has a verdict ends the chain, otherwise the row goes to its channel:

    cancelled escalation ─▶ silences / maintenance ─▶ circuit breaker ─▶ (attempt)
      acked or resolved       a window mutes it         receiver's circuit open
      → Skip("cancelled")     → Skip("suppressed")      → Defer(until), attempt given back

A ``group.flush`` row is never an escalation; its muted alerts were already dropped
when the worker built its :class:`~services.notifier.message.GroupNotification`, so
the silence stage only asks whether any alert is left. After the attempt,
:func:`services.notifier.outbox.decide` is the pure stage that picks the next state.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from services.notifier.breaker import CircuitBreakers
from services.notifier.escalation import is_escalation
from services.notifier.message import GroupNotification
from services.notifier.outbox import Claimed
from services.notifier.silencing import MuteWindow, muted_by


@dataclass(frozen=True)
class Skip:
    """End the row without trying: nothing is sent, the reason is recorded."""

    outcome: Literal["suppressed", "cancelled"]
    why: str


@dataclass(frozen=True)
class Defer:
    """Put the row back, due at ``until_ms``, without spending an attempt."""

    until_ms: int


Verdict = Skip | Defer | None
"""``None``: go on to the attempt."""


def cancelled(row: Claimed) -> Skip | None:
    """An escalation step of a breach acknowledged or resolved meanwhile."""
    if row.flush is not None or not is_escalation(row.kind) or row.breach() is None:
        return None
    if row.acked_by is not None:
        return Skip("cancelled", f"acknowledged by {row.acked_by}")
    if row.breach_status == "resolved":
        return Skip("cancelled", "resolved")
    return None


def muted(
    row: Claimed,
    group: GroupNotification | None,
    windows: Sequence[MuteWindow],
    now_ms: int,
) -> Skip | None:
    """A silence or maintenance window mutes the row (for a group: every alert of it)."""
    if group is not None:
        return None if group.alerts else Skip("suppressed", "every alert of the group muted")
    breach = row.breach()
    if breach is None:
        return None
    window = muted_by(breach, windows, now_ms, told=row.told)
    return None if window is None else Skip("suppressed", f"muted by {window.source}")


def circuit(breakers: CircuitBreakers, receiver: str, now_ms: int) -> Defer | None:
    """The receiver's circuit is open (or half-open with its one trial out)."""
    retry_at = breakers.allow(receiver, now_ms)
    return None if retry_at is None else Defer(retry_at)


def before_attempt(
    row: Claimed,
    group: GroupNotification | None,
    windows: Sequence[MuteWindow],
    breakers: CircuitBreakers,
    now_ms: int,
) -> Verdict:
    """Run the stages in order; the first verdict wins. The breaker comes last: it
    hands out a half-open trial, which a skipped row must not take."""
    return (
        cancelled(row)
        or muted(row, group, windows, now_ms)
        or circuit(breakers, row.receiver, now_ms)
    )
