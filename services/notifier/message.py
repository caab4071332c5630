"""What a channel is asked to send: one :class:`Notification` (a breach lifecycle event,
or an escalation step or an acknowledgement of it) with its links, or one
:class:`GroupNotification` (a flush of a notification group: every alert of the group).

Row kinds of the outbox and what they mean to a channel (``action``)::

    breach.opened, breach.updated, budget.exhausted,
    deadline.warning, escalation.<n>                    trigger
    breach.resolved                                     resolve
    breach.acknowledged                                 acknowledge
    group.flush                                         a GroupNotification: each alert
                                                        has its own action

Links every message carries (under the notifier's public URL,
``SLAWATCH_NOTIFIER_PUBLIC_URL``): ``status_url`` (``/v1/breaches/<id>``, the API),
``console_url`` (:data:`CONSOLE_PATH`, the on-call console's page of the breach: a
stable path, so links sent today keep working once the console serves it) and, while
the breach is open and unacknowledged, ``ack_url`` (a signed ack link).
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from typing import Literal

from shared.definitions.model import Agreement, Objective
from shared.schemas import Breach

Action = Literal["trigger", "resolve", "acknowledge"]

ACKNOWLEDGED = "breach.acknowledged"
ESCALATION_PREFIX = "escalation."
GROUP_FLUSH = "group.flush"
CONSOLE_PATH = "/console/breaches/{id}"
"""The console's page of one breach, under the notifier's public URL."""


def console_url(base_url: str, breach_id: str) -> str:
    return base_url.rstrip("/") + CONSOLE_PATH.format(id=breach_id)


def objective_of(agreement: Agreement | None, breach: Breach) -> Objective | None:
    """The definition of the breach's objective in ``agreement``, if it still has it."""
    if agreement is None:
        return None
    return next((o for o in agreement.spec.objectives if o.name == breach.objective), None)


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
    """One message to one receiver. ``idempotency_key`` is the same for every retry.
    ``objective`` is the objective's definition (how its SLI reads), when known."""

    breach: Breach
    kind: str
    at: int
    status_url: str
    ack_url: str | None
    console_url: str
    ack: Ack | None = None
    objective: Objective | None = None

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


def labels_of(breach: Breach) -> dict[str, str]:
    """A breach as Alertmanager-style labels: agreement, objective, service, severity,
    breach_id, then its group attributes (a clashing name is prefixed ``group_``)."""
    labels = {
        "agreement": breach.agreement.name,
        "objective": breach.objective,
        "service": breach.service,
        "severity": breach.severity,
        "breach_id": breach.id,
    }
    for key, value in breach.group.items():
        labels[f"group_{key}" if key in labels else key] = value
    return labels


@dataclass(frozen=True)
class GroupNotification:
    """One flush of a notification group to one receiver: every alert the group holds at
    ``at`` (the flush time), firing and resolved, each a :class:`Notification` of the
    breach's latest event. ``status`` is ``firing`` while any alert fires."""

    receiver: str
    group_key: str
    at: int
    alerts: tuple[Notification, ...]
    group_labels: dict[str, str] = field(default_factory=dict)

    @property
    def status(self) -> Literal["firing", "resolved"]:
        return "firing" if any(a.action != "resolve" for a in self.alerts) else "resolved"

    @property
    def common_labels(self) -> dict[str, str]:
        """The labels (:func:`labels_of`) every alert of the group has with the same value."""
        if not self.alerts:
            return {}
        common = labels_of(self.alerts[0].breach)
        for alert in self.alerts[1:]:
            other = labels_of(alert.breach)
            common = {k: v for k, v in common.items() if other.get(k) == v}
        return common

    @property
    def kind(self) -> str:
        return GROUP_FLUSH

    @property
    def idempotency_key(self) -> str:
        """Per (group key, flush time, receiver); the key is hashed (it may be long)."""
        digest = hashlib.sha256(f"{self.receiver}\n{self.group_key}".encode()).hexdigest()
        return f"group-{digest[:32]}:{GROUP_FLUSH}:{self.at}"


def simple(breach: Breach, base_url: str = "http://127.0.0.1:8082") -> Notification:
    """A notification of the breach event itself, links under ``base_url`` (tests, tools)."""
    return Notification(
        breach=breach,
        kind=breach.kind,
        at=breach.at,
        status_url=f"{base_url}/v1/breaches/{breach.id}",
        ack_url=None,
        console_url=console_url(base_url, breach.id),
    )
