"""What timer objectives (deadline, freshness) share: selection, groups, breach events."""

from __future__ import annotations

from typing import Any

from services.evaluator.objectives.base import MAX_GROUPS, EventLike
from shared.definitions.model import Agreement, DeadlineObjective, FreshnessObjective
from shared.schemas import AgreementRef, Breach, BreachKind, Severity, WindowSli
from shared.timeutil import Clock

MISSING = ""


class Selected:
    """Selection (service, types, attribute matchers), grouping and breach building."""

    def __init__(
        self,
        agreement: Agreement,
        objective: DeadlineObjective | FreshnessObjective,
        clock: Clock,
        *,
        max_groups: int = MAX_GROUPS,
    ) -> None:
        self.agreement = AgreementRef(
            name=agreement.metadata.name,
            type=agreement.spec.type,
            provider=agreement.spec.provider,
            consumer=agreement.spec.consumer,
        )
        self.labels = dict(agreement.metadata.labels)
        self.name = objective.name
        self._objective_id = f"{agreement.metadata.name}/{objective.name}"
        self._service = objective.service
        self._types = frozenset(objective.select.types)
        self._matchers = tuple(objective.select.attributes.items())
        self.selection = (self._types, bool(self._matchers))
        self._group_by = tuple(objective.group_by)
        self.severity: Severity = objective.severity
        self.clock = clock
        self.max_groups = max_groups
        self.overflow_events = 0
        self.fingerprint = ""
        self.measure_fingerprint = ""

    @property
    def objective_id(self) -> str:
        return self._objective_id

    @property
    def service(self) -> str:
        return self._service

    @property
    def grouped(self) -> bool:
        return bool(self._group_by)

    def matches(self, event: EventLike) -> bool:
        if event.service != self._service:
            return False
        if self._types and event.type not in self._types:
            return False
        attributes = event.attributes
        return all(attributes.get(name) == wanted for name, wanted in self._matchers)

    def group_of(self, event: EventLike) -> dict[str, str]:
        return {name: event.attributes.get(name, MISSING) for name in self._group_by}

    def make_breach(
        self,
        kind: BreachKind,
        *,
        id: str,
        group: dict[str, str],
        rule: str,
        severity: Severity,
        at: int,
        opened_at: int,
        windows: list[WindowSli],
        trigger: EventLike | None,
        resolved: bool = False,
        **extra: Any,
    ) -> Breach:
        return Breach(
            id=id,
            kind=kind,
            at=at,
            agreement=self.agreement,
            objective=self.name,
            objective_id=self._objective_id,
            service=self._service,
            group=dict(group),
            rule=rule,
            severity=severity,
            windows=windows,
            opened_at=opened_at,
            resolved_at=at if resolved else None,
            detected_at=self.clock(),
            trigger_event_id=trigger.id if trigger else None,
            trigger_received_at=trigger.received_at if trigger else None,
            labels=self.labels,
            **extra,
        )
