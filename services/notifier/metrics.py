"""Notifier metrics. Label values are bounded: ``kind`` (5 breach kinds), ``channel``
(one per receiver ``spec.type``, or ``none`` when the receiver or its channel could
not be resolved, and for rows suppressed or cancelled before reaching a channel),
``outcome`` (delivered/retry/dead/suppressed/cancelled), ``change`` (opened/closed),
``via`` (api/link), ``reason``
(:class:`~services.notifier.channels.base.Reason`, or the intake's dead-letter reasons
``invalid_breach`` / ``unstorable_breach``).

``slawatch_breach_events_received_total`` counts records consumed, duplicates included;
``slawatch_notifications_total`` counts attempts by how they ended.
``slawatch_outbox_pending`` is the whole outbox (shared by replicas): every replica
reports the same value, so aggregate with ``max``, not ``sum``.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from shared.logid import offset_resets
from shared.metrics import LATENCY_BUCKETS_S


class NotifierMetrics:
    """Every metric the notifier exports, registered on the given registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.offset_resets = offset_resets(registry)
        self.breach_events_received = Counter(
            "slawatch_breach_events_received_total",
            "Breach lifecycle events consumed from the breaches topic.",
            ["kind"],
            registry=registry,
        )
        self.breach_events_rejected = Counter(
            "slawatch_breach_events_rejected_total",
            "Records on the breaches topic sent to the dead letter topic.",
            ["reason"],
            registry=registry,
        )
        self.notifications = Counter(
            "slawatch_notifications_total",
            "Delivery attempts by channel and outcome (delivered, retry, dead).",
            ["channel", "outcome"],
            registry=registry,
        )
        self.delivery_failures = Counter(
            "slawatch_delivery_failures_total",
            "Failed delivery attempts by channel and reason.",
            ["channel", "reason"],
            registry=registry,
        )
        self.delivery_latency = Histogram(
            "slawatch_delivery_latency_seconds",
            "From the breach's detected_at to the receiver accepting it.",
            ["channel"],
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.deliveries_dead = Counter(
            "slawatch_deliveries_dead_total",
            "Deliveries that went dead (sent to the dead letter topic) by channel and reason.",
            ["channel", "reason"],
            registry=registry,
        )
        self.circuit_deferrals = Counter(
            "slawatch_circuit_deferrals_total",
            "Due deliveries put back because their receiver's circuit was open.",
            registry=registry,
        )
        self.circuit_changes = Counter(
            "slawatch_circuit_changes_total",
            "Circuit breaker state changes (opened, closed).",
            ["change"],
            registry=registry,
        )
        self.acks = Counter(
            "slawatch_breach_acks_total",
            "Breaches acknowledged, by how (api, link).",
            ["via"],
            registry=registry,
        )
        self.agreement_credit = Gauge(
            "slawatch_agreement_credit_percent",
            "Service credit an agreement would owe for the period in progress: basis=now "
            "at today's attainment, basis=projected at the current burn to period end.",
            ["agreement", "basis"],
            registry=registry,
        )
        self.outbox_pending = Gauge(
            "slawatch_outbox_pending",
            "Outbox rows not yet delivered or dead (pending or being delivered).",
            registry=registry,
        )
