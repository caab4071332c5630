"""How a lifecycle event changes the stored breach (pure).

Events of one breach can arrive twice or out of order (replays, rebalances). The
stored row follows the newest event by ``(at, rank of kind)``; an older event is
still logged in ``breach_events`` and still notified, but does not roll the row back.

    status:  open ── breach.resolved ──▶ resolved
"""

from __future__ import annotations

from typing import Literal

from shared.schemas import Breach

Status = Literal["open", "resolved"]

_RANK = {
    "deadline.warning": 0,
    "breach.opened": 1,
    "breach.updated": 2,
    "budget.exhausted": 3,
    "breach.resolved": 4,
}


def status_of(kind: str) -> Status:
    """The breach status after an event of ``kind``."""
    return "resolved" if kind == "breach.resolved" else "open"


def resolved_at_of(breach: Breach) -> int | None:
    """When the breach resolved, if this event resolves it."""
    if status_of(breach.kind) != "resolved":
        return None
    return breach.resolved_at if breach.resolved_at is not None else breach.at


def supersedes(new_at: int, new_kind: str, old_at: int, old_kind: str) -> bool:
    """Whether the new event should replace the stored state (ties: later kind wins,
    an identical replay rewrites the same values)."""
    return (new_at, _RANK.get(new_kind, 0)) >= (old_at, _RANK.get(old_kind, 0))
