"""What a channel is asked to send: one :class:`Notification` (a breach lifecycle event,
or an escalation step or an acknowledgement of it) with its links.

Row kinds of the outbox and what they mean to a channel (``action``)::

    breach.opened, breach.updated, budget.exhausted,
    deadline.warning, escalation.<n>, repeat.<n>        trigger
    breach.resolved                                     resolve
    breach.acknowledged                                 acknowledge
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from shared.schemas import Breach

Action = Literal["trigger", "resolve", "acknowledge"]

ACKNOWLEDGED = "breach.acknowledged"
ESCALATION_PREFIX = "escalation."


def action_of(kind: str) -> Action:
    if kind == "breach.resolved":
        return "resolve"
    if kind == ACKNOWLEDGED:
        return "acknowledge"
    return "trigger"


@dataclass(frozen=True)
class Ack:
    by: str
    comment: str | None
    at: int


@dataclass(frozen=True)
class Notification:
    """One message to one receiver. ``idempotency_key`` is the same for every retry."""

    breach: Breach
    kind: str
    at: int
    status_url: str
    ack_url: str | None
    ack: Ack | None = None

    @property
    def action(self) -> Action:
        return action_of(self.kind)

    @property
    def idempotency_key(self) -> str:
        return f"{self.breach.id}:{self.kind}:{self.at}"

    @property
    def escalation_step(self) -> int | None:
        if self.kind.startswith(ESCALATION_PREFIX):
            return int(self.kind.removeprefix(ESCALATION_PREFIX))
        return None


def simple(breach: Breach, base_url: str = "http://127.0.0.1:8082") -> Notification:
    """A notification of the breach event itself, links under ``base_url`` (tests, tools)."""
    return Notification(
        breach=breach,
        kind=breach.kind,
        at=breach.at,
        status_url=f"{base_url}/v1/breaches/{breach.id}",
        ack_url=None,
    )
