"""The evaluator's Prometheus metrics, registered on the registry it is given.

Label sets are bounded by the definitions, never by event data:

==========================================  =====================  =========================
metric                                      labels                 cardinality
==========================================  =====================  =========================
slawatch_events_evaluated_total             —                      1
slawatch_late_events_total                  —                      1
slawatch_duplicate_events_total             —                      1
slawatch_group_overflow_events_total        objective              objectives
slawatch_deadline_entities_refused_total    objective              deadline objectives
slawatch_evaluator_deadletters_total        reason (late|invalid)  2
slawatch_breaches_opened_total              objective              objectives
slawatch_active_breaches                    objective              objectives
slawatch_sli                                objective, window      ungrouped objectives only
slawatch_burn_rate                          objective, window      ungrouped burn-rate only
slawatch_error_budget_remaining             objective              ungrouped burn-rate only
slawatch_detection_latency_seconds          —                      1 histogram
slawatch_checkpoints_total                  —                      1
slawatch_checkpoint_failures_total          —                      1
slawatch_offset_resets_total                topic, reason          2 per topic (shared.logid)
slawatch_evaluator_consumer_lag             partition              owned partitions
==========================================  =====================  =========================

``objective`` is ``"<agreement>/<objective>"``. ``slawatch_sli`` is exported only for
objectives without ``groupBy``: a per-group series would grow with attribute values
(customers, regions), which the status API serves instead. Gauges cover the
partitions this instance owns; sum them across instances.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.evaluator.engine import Engine
from services.evaluator.objectives.deadline import take_refused
from shared.logid import offset_resets
from shared.metrics import LATENCY_BUCKETS_S


class EvaluatorMetrics:
    """Every evaluator metric, bound to one registry."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.offset_resets = offset_resets(registry)
        self.consumer_lag = Gauge(
            "slawatch_evaluator_consumer_lag",
            "Records of the events topic not yet evaluated (log end minus the next offset), "
            "per owned partition.",
            ["partition"],
            registry=registry,
        )
        self.checkpoint_failures = Counter(
            "slawatch_checkpoint_failures_total",
            "Checkpoints that PostgreSQL did not take (retried; the state is kept).",
            registry=registry,
        )
        self.events_evaluated = Counter(
            "slawatch_events_evaluated_total",
            "Events from the events topic evaluated (not late, well formed).",
            registry=registry,
        )
        self.late_events = Counter(
            "slawatch_late_events_total",
            "Events older than their partition's watermark, sent to the dead letter topic.",
            registry=registry,
        )
        self.future_events = Counter(
            "slawatch_future_events_total",
            "Events stamped past now + SLAWATCH_MAX_FUTURE_SKEW_MS, ignored and sent to "
            "the dead letter topic (reason future).",
            registry=registry,
        )
        self.duplicates = Counter(
            "slawatch_duplicate_events_total",
            "Events whose id was already seen within the dedup horizon (counted once).",
            registry=registry,
        )
        self.group_overflow = Counter(
            "slawatch_group_overflow_events_total",
            "Events of new groups past an objective's group cap, folded into its overflow group.",
            ["objective"],
            registry=registry,
        )
        self.deadline_refused = Counter(
            "slawatch_deadline_entities_refused_total",
            "Deadline clocks not started: the group already held the most open entities "
            "(SLAWATCH_EVALUATOR_MAX_OPEN_ENTITIES).",
            ["objective"],
            registry=registry,
        )
        self.deadletters = Counter(
            "slawatch_evaluator_deadletters_total",
            "Records the evaluator sent to the dead letter topic, by reason.",
            ["reason"],
            registry=registry,
        )
        self.breaches_opened = Counter(
            "slawatch_breaches_opened_total",
            "breach.opened events published.",
            ["objective"],
            registry=registry,
        )
        self.active_breaches = Gauge(
            "slawatch_active_breaches",
            "Open breaches in the partitions this instance owns.",
            ["objective"],
            registry=registry,
        )
        self.sli = Gauge(
            "slawatch_sli",
            "SLI of ungrouped objectives over their window (owned partitions).",
            ["objective", "window"],
            registry=registry,
        )
        self.burn_rate = Gauge(
            "slawatch_burn_rate",
            "Burn rate per alerting window of ungrouped burn-rate objectives.",
            ["objective", "window"],
            registry=registry,
        )
        self.budget_remaining = Gauge(
            "slawatch_error_budget_remaining",
            "Error budget left (1 = untouched, <= 0 = exhausted) of ungrouped burn-rate "
            "objectives over their window.",
            ["objective"],
            registry=registry,
        )
        self.detection_latency = Histogram(
            "slawatch_detection_latency_seconds",
            "Trigger event received_at to breach event published (acknowledged).",
            buckets=LATENCY_BUCKETS_S,
            registry=registry,
        )
        self.checkpoints = Counter(
            "slawatch_checkpoints_total",
            "Checkpoint transactions (state and offsets of partitions) written to PostgreSQL.",
            registry=registry,
        )

    def count_refused(self, engine: Engine) -> dict[str, int]:
        """Count the deadline starts refused since the last call; returns them per objective."""
        refused = take_refused(engine.objectives.values())
        for objective_id, count in refused.items():
            self.deadline_refused.labels(objective_id).inc(count)
        return refused

    def refresh(self, engine: Engine) -> None:
        """Set the gauges from the engine's state; cheap, run on the idle tick."""
        for objective_id, count in engine.open_breaches().items():
            self.active_breaches.labels(objective_id).set(count)
        for objective_id, objective in engine.objectives.items():
            if objective.grouped:
                continue
            good = valid = 0
            for entry in engine.status(objective_id):
                good += entry.status.good
                valid += entry.status.valid
                for window, rate in entry.status.burn_rates.items():
                    self.burn_rate.labels(objective_id, window).set(rate)
                if entry.status.budget_remaining is not None:
                    self.budget_remaining.labels(objective_id).set(entry.status.budget_remaining)
            if valid:
                self.sli.labels(objective_id, objective.window_label).set(good / valid)

    def forget_partition(self, partition: int) -> None:
        """Drop the series of a partition this instance no longer owns."""
        with contextlib.suppress(KeyError):
            self.consumer_lag.remove(str(partition))
