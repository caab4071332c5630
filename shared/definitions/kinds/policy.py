"""Notification policy of an agreement: routes from breach events to receivers.

Routes are tried in order, like Alertmanager's: the first route whose ``match``
holds takes the event; with ``continue: true`` the search goes on to later routes
too. A route with ``default: true`` takes the event only when no other route did.

Matcher keys: ``severity``, ``service``, ``objective``, ``kind``, ``agreement``,
``agreement_type``, ``provider``, ``consumer``, ``party`` (provider or consumer);
any other key is a group attribute of the breach, else one of its labels. Values
are compared for equality; a key the breach lacks never matches.

Grouping (``groupBy``, ``groupWait``, ``groupInterval``, ``repeatInterval``; only
routes that set ``groupBy`` group, the others notify at once) and ``escalate`` steps:
see ``services/notifier/grouping.py`` (timing), ``services/notifier/groups.py`` and
``services/notifier/escalation.py``.
"""

from __future__ import annotations

from pydantic import Field, field_validator

from shared.definitions.kinds.common import Name, Spec, alias_of, duration, given


class EscalationStep(Spec):
    """``after`` the opening, if the breach is neither acknowledged nor resolved,
    notify ``receivers``."""

    after: str
    receivers: list[Name] = Field(min_length=1)

    _after_ok = field_validator("after")(duration)


class Route(Spec):
    """Send matching breach events to receivers."""

    match: dict[str, str] = Field(default_factory=dict)
    receivers: list[Name] = Field(min_length=1)
    continue_: bool = Field(default=False, alias="continue")
    default: bool = False
    group_by: list[str] = Field(default_factory=list)
    group_wait: str = "0s"
    group_interval: str = "5m"
    repeat_interval: str = "4h"
    escalate: list[EscalationStep] = Field(default_factory=list)
    escalate_every: str | None = None
    escalate_cycles: int = Field(default=10, ge=1, le=100)

    _durations_ok = field_validator("group_wait", "group_interval", "repeat_interval")(duration)

    @field_validator("escalate_every")
    @classmethod
    def _every_ok(cls, value: str | None) -> str | None:
        return None if value is None else duration(value)

    def field_checks(self) -> list[tuple[str, str]]:
        """Timing written for grouping or escalation that this route does not do."""
        out: list[tuple[str, str]] = []
        if not self.group_by:
            for field in given(self, "group_wait", "group_interval", "repeat_interval"):
                name = alias_of(self, field)
                out.append(
                    (
                        name,
                        f"{name!r} does not apply without 'groupBy': a route that does not "
                        "group notifies every breach event at once; add groupBy, or "
                        f"remove {name!r}",
                    )
                )
        if not self.escalate:
            for field in given(self, "escalate_every", "escalate_cycles"):
                name = alias_of(self, field)
                out.append(
                    (
                        name,
                        f"{name!r} does not apply without 'escalate' steps (it repeats "
                        f"them); add escalate steps, or remove {name!r}",
                    )
                )
        elif self.escalate_every is None and given(self, "escalate_cycles"):
            out.append(
                (
                    "escalateCycles",
                    "'escalateCycles' does not apply without 'escalateEvery': the steps "
                    "run once unless they repeat every escalateEvery; add escalateEvery, "
                    "or remove 'escalateCycles'",
                )
            )
        if self.default and self.continue_:
            out.append(
                (
                    "continue",
                    "'continue' does not apply to a default route: default routes are "
                    "tried only when no other route took the event, and every matching "
                    "one takes it; remove 'continue'",
                )
            )
        return out
