"""The definition model: every kind, and the registry from ``kind`` to its model.

Each concern lives in ``shared.definitions.kinds.<module>``; this module re-exports
them so callers have one import path. A new kind is added to ``KINDS`` and to
``Document``.
"""

from __future__ import annotations

from shared.definitions.kinds.agreement import Agreement, AgreementSpec
from shared.definitions.kinds.common import API_VERSION, Metadata, Name, Spec
from shared.definitions.kinds.objectives import (
    Alerting,
    GoodSpec,
    Objective,
    RatioObjective,
    Selector,
    ValueCondition,
)
from shared.definitions.kinds.policy import Route
from shared.definitions.kinds.receivers import Receiver, ReceiverSpec, WebhookReceiverSpec

Document = Agreement | Receiver
KINDS: dict[str, type[Agreement] | type[Receiver]] = {"Agreement": Agreement, "Receiver": Receiver}

__all__ = [
    "API_VERSION",
    "KINDS",
    "Agreement",
    "AgreementSpec",
    "Alerting",
    "Document",
    "GoodSpec",
    "Metadata",
    "Name",
    "Objective",
    "RatioObjective",
    "Receiver",
    "ReceiverSpec",
    "Route",
    "Selector",
    "Spec",
    "ValueCondition",
    "WebhookReceiverSpec",
]
