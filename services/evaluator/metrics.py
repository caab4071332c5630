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
slawatch_objective_target                   objective              ratio objectives
slawatch_group_sli                          objective, window,     grouped ratio objectives:
                                            group                  ≤ max_groups + 1 each
slawatch_group_burn_rate                    objective, window,     grouped burn-rate: top
                                            group                  max_groups each
slawatch_group_error_budget_remaining       objective, group       grouped burn-rate: top
                                                                   max_groups each
slawatch_detection_latency_seconds          —                      1 histogram
slawatch_checkpoints_total                  —                      1
slawatch_checkpoint_failures_total          —                      1
slawatch_offset_resets_total                topic, reason          2 per topic (shared.logid)
slawatch_evaluator_consumer_lag             partition              owned partitions
==========================================  =====================  =========================

``objective`` is ``"<agreement>/<objective>"``. ``slawatch_sli`` is exported only for
objectives without ``groupBy``. A grouped objective (per customer, region) exports
``slawatch_group_*`` series with a cardinality cap: the ``max_groups`` groups with the
most valid events in the window (``SLAWATCH_METRICS_MAX_GROUPS``, default 20), keyed
``group="customer=acme,region=eu"``, plus one ``group="(other)"`` SLI over all the
others together; a group that leaves the top loses its series at the next refresh.
The status API serves every group. Gauges cover the partitions this instance owns;
sum them across instances.
"""

from __future__ import annotations

import contextlib

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

from services.evaluator.engine import Engine
from services.evaluator.objectives.deadline import take_refused
from shared.definitions.model import RatioObjective
from shared.logid import offset_resets
from shared.metrics import LATENCY_BUCKETS_S
from shared.schemas import group_key
from shared.settings import Settings

#: groups of one grouped objective with series of their own (the rest: OTHER_GROUP)
DEFAULT_MAX_GROUPS: int = Settings.model_fields["metrics_max_groups"].default
OTHER_GROUP = "(other)"


class EvaluatorMetrics:
    """Every evaluator metric, bound to one registry."""

    def __init__(self, registry: CollectorRegistry, max_groups: int = DEFAULT_MAX_GROUPS) -> None:
        self.max_groups = max_groups
        #: the grouped series set at the last refresh, to remove those not set again
        self._group_series: set[tuple[str, tuple[str, ...]]] = set()
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
        self.target = Gauge(
            "slawatch_objective_target",
            "Target of ratio objectives (the SLI it promises, 0 to 1).",
            ["objective"],
            registry=registry,
        )
        self.group_sli = Gauge(
            "slawatch_group_sli",
            "SLI per group of grouped ratio objectives: the top groups by valid events "
            'and group="(other)" for the rest (SLAWATCH_METRICS_MAX_GROUPS).',
            ["objective", "window", "group"],
            registry=registry,
        )
        self.group_burn_rate = Gauge(
            "slawatch_group_burn_rate",
            "Burn rate per alerting window and group of grouped burn-rate objectives "
            "(the top groups by valid events).",
            ["objective", "window", "group"],
            registry=registry,
        )
        self.group_budget_remaining = Gauge(
            "slawatch_group_error_budget_remaining",
            "Error budget left per group of grouped burn-rate objectives (the top groups).",
            ["objective", "group"],
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
        grouped_now: set[tuple[str, tuple[str, ...]]] = set()
        for objective_id, objective in engine.objectives.items():
            definition = getattr(objective, "definition", None)
            if isinstance(definition, RatioObjective):
                self.target.labels(objective_id).set(definition.target)
            if objective.grouped:
                if isinstance(definition, RatioObjective):
                    window = objective.window_label
                    grouped_now |= self._refresh_groups(engine, objective_id, window)
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
        for gauge_name, labels in self._group_series - grouped_now:
            with contextlib.suppress(KeyError):
                getattr(self, gauge_name).remove(*labels)
        self._group_series = grouped_now

    def _refresh_groups(
        self, engine: Engine, objective_id: str, window: str
    ) -> set[tuple[str, tuple[str, ...]]]:
        """The capped per-group series of one grouped ratio objective; returns the label
        sets it set (the caller removes the ones of the last refresh it did not)."""
        entries = [e.status for e in engine.status(objective_id)]
        entries.sort(key=lambda s: (-s.valid, group_key(s.group)))
        top, rest = entries[: self.max_groups], entries[self.max_groups :]
        kept: set[tuple[str, tuple[str, ...]]] = set()
        for status in top:
            group = group_key(status.group)
            if status.sli is not None:
                self.group_sli.labels(objective_id, window, group).set(status.sli)
                kept.add(("group_sli", (objective_id, window, group)))
            for rule_window, rate in status.burn_rates.items():
                self.group_burn_rate.labels(objective_id, rule_window, group).set(rate)
                kept.add(("group_burn_rate", (objective_id, rule_window, group)))
            if status.budget_remaining is not None:
                remaining = status.budget_remaining
                self.group_budget_remaining.labels(objective_id, group).set(remaining)
                kept.add(("group_budget_remaining", (objective_id, group)))
        good = sum(s.good for s in rest)
        valid = sum(s.valid for s in rest)
        if valid:
            self.group_sli.labels(objective_id, window, OTHER_GROUP).set(good / valid)
            kept.add(("group_sli", (objective_id, window, OTHER_GROUP)))
        return kept

    def forget_partition(self, partition: int) -> None:
        """Drop the series of a partition this instance no longer owns."""
        with contextlib.suppress(KeyError):
            self.consumer_lag.remove(str(partition))
