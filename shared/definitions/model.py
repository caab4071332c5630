"""The definition model: every kind, and the registry from ``kind`` to its model.

Each concern lives in ``shared.definitions.kinds.<module>``; this module re-exports
them so callers have one import path. A new kind is added to ``KINDS`` and to
``Document``.
"""

from __future__ import annotations

from shared.definitions.kinds.agreement import Agreement, AgreementSpec
from shared.definitions.kinds.calendar import Calendar, CalendarSpec
from shared.definitions.kinds.common import API_VERSION, Metadata, Name, Spec
from shared.definitions.kinds.objectives import (
    Alerting,
    BurnRateRule,
    DeadlineObjective,
    FreshnessObjective,
    GoodSpec,
    Objective,
    QuantileObjective,
    RatioObjective,
    Selector,
    ValueCondition,
)
from shared.definitions.kinds.party import Party, PartySpec
from shared.definitions.kinds.policy import Route
from shared.definitions.kinds.receivers import Receiver, ReceiverSpec, WebhookReceiverSpec
from shared.definitions.kinds.service import Service, ServiceSpec
from shared.definitions.kinds.silence import MaintenanceWindow, Silence
from shared.definitions.kinds.source import Source, SourceSpec

Document = Agreement | Receiver | Calendar | Silence | MaintenanceWindow | Service | Party | Source
KINDS: dict[
    str,
    type[Agreement]
    | type[Receiver]
    | type[Calendar]
    | type[Silence]
    | type[MaintenanceWindow]
    | type[Service]
    | type[Party]
    | type[Source],
] = {
    "Agreement": Agreement,
    "Receiver": Receiver,
    "Calendar": Calendar,
    "Silence": Silence,
    "MaintenanceWindow": MaintenanceWindow,
    "Service": Service,
    "Party": Party,
    "Source": Source,
}

__all__ = [
    "API_VERSION",
    "KINDS",
    "Agreement",
    "AgreementSpec",
    "Alerting",
    "BurnRateRule",
    "Calendar",
    "CalendarSpec",
    "DeadlineObjective",
    "Document",
    "FreshnessObjective",
    "GoodSpec",
    "MaintenanceWindow",
    "Metadata",
    "Name",
    "Objective",
    "Party",
    "PartySpec",
    "QuantileObjective",
    "RatioObjective",
    "Receiver",
    "ReceiverSpec",
    "Route",
    "Selector",
    "Service",
    "ServiceSpec",
    "Silence",
    "Source",
    "SourceSpec",
    "Spec",
    "ValueCondition",
    "WebhookReceiverSpec",
]
