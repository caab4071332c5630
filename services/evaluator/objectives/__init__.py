"""Compiled objectives: one module per objective kind, all behind :mod:`.base`."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterator, Mapping
from functools import lru_cache
from typing import Any

import orjson

from services.evaluator.objectives.base import MAX_GROUPS, CompiledObjective
from services.evaluator.objectives.deadline import MAX_OPEN_ENTITIES, CompiledDeadline
from services.evaluator.objectives.freshness import CompiledFreshness
from services.evaluator.objectives.quantile import CompiledQuantile
from services.evaluator.objectives.ratio import CompiledRatio
from shared.definitions.model import (
    Calendar,
    CalendarSpec,
    FreshnessObjective,
    QuantileObjective,
    RatioObjective,
)
from shared.definitions.store import Catalog
from shared.timeutil import Clock

log = logging.getLogger(__name__)


def compile_catalog(
    catalog: Catalog,
    clock: Clock,
    calendars: Mapping[str, CalendarSpec] | None = None,
    *,
    max_groups: int = MAX_GROUPS,
    max_open_entities: int = MAX_OPEN_ENTITIES,
) -> Iterator[CompiledObjective]:
    """Every objective of every agreement, compiled; ``clock`` stamps ``detected_at``.

    ``max_groups`` caps the groups of every objective (per partition, see
    :func:`.base.capped_group`); ``max_open_entities`` the open clocks of a deadline
    objective per group (see :mod:`.deadline`). The live evaluator passes its settings.
    Neither is part of the fingerprint: they change only with a restart.

    ``calendars`` are the Calendar specs by name that deadline objectives refer to (by
    default the catalog's Calendars); a deadline objective naming an unknown calendar is
    skipped with an error in the log (definitions validation reports it too).

    Each compiled objective carries a ``fingerprint`` of everything it was compiled
    from (objective, agreement envelope, calendar): hot reload keeps the state of an
    objective whose fingerprint did not change. Ratio and quantile objectives also
    carry a ``measure_fingerprint`` of what their window counts depend on (service,
    selection, good rule, window, grouping), so a change of target or alerting alone
    carries the counts over (see :meth:`Engine.reload`).
    """
    if calendars is None:
        calendars = {
            n: d.spec for n, d in catalog.of("Calendar").items() if isinstance(d, Calendar)
        }
    for name in sorted(catalog.agreements):
        agreement = catalog.agreements[name]
        envelope = {
            "name": name,
            "labels": agreement.metadata.labels,
            "type": agreement.spec.type,
            "provider": agreement.spec.provider,
            "consumer": agreement.spec.consumer,
        }
        for objective in agreement.spec.objectives:
            compiled: CompiledObjective
            calendar: CalendarSpec | None = None
            if isinstance(objective, RatioObjective):
                compiled = CompiledRatio(agreement, objective, clock, max_groups=max_groups)
            elif isinstance(objective, QuantileObjective):
                compiled = CompiledQuantile(agreement, objective, clock, max_groups=max_groups)
            elif isinstance(objective, FreshnessObjective):
                compiled = CompiledFreshness(agreement, objective, clock, max_groups=max_groups)
            else:
                cal_name = objective.calendar
                if cal_name is not None and cal_name not in calendars:
                    log.error(
                        "deadline objective names an unknown calendar; skipped",
                        extra={"objective": f"{name}/{objective.name}", "calendar": cal_name},
                    )
                    continue
                calendar = calendars[cal_name] if cal_name is not None else None
                compiled = CompiledDeadline(
                    agreement,
                    objective,
                    clock,
                    calendar,
                    max_groups=max_groups,
                    max_open_entities=max_open_entities,
                )
            dumped = objective.model_dump(mode="json")
            if isinstance(objective, FreshnessObjective) and not objective.expected_groups:
                # Added after snapshots held fingerprints: left out while unused, so an
                # existing freshness objective still matches its stored state.
                del dumped["expected_groups"]
            compiled.fingerprint = orjson.dumps(
                [
                    envelope,
                    dumped,
                    None if calendar is None else calendar.model_dump(mode="json"),
                ],
                option=orjson.OPT_SORT_KEYS,
            ).decode()
            if isinstance(objective, RatioObjective | QuantileObjective):
                compiled.measure_fingerprint = measure_fingerprint(objective)
            yield compiled


#: Fields of an objective that decide alerts but not what its windows count.
DECISION_FIELDS = frozenset({"target", "alerting", "threshold", "quantile", "severity"})


def measure_fingerprint(objective: RatioObjective | QuantileObjective) -> str:
    """Everything the objective's window counts depend on (see :data:`DECISION_FIELDS`)."""
    dumped = objective.model_dump(mode="json")
    kept = {k: v for k, v in dumped.items() if k not in DECISION_FIELDS}
    return orjson.dumps(kept, option=orjson.OPT_SORT_KEYS).decode()


#: Fields of a ratio or quantile objective that decide what its per-minute rollups
#: count: not the window (rollups are per minute, whatever the window) and not the
#: decision. A quantile's good count is "value within ``threshold``".
ROLLUP_FIELDS = frozenset({"kind", "service", "select", "good", "threshold", "group_by"})


def rollup_fingerprint(objective: RatioObjective | QuantileObjective) -> str:
    """What the objective's per-minute rollups measure (see :data:`ROLLUP_FIELDS`).

    Stored with every rollup row, so a window rebuilt after a definition change reads
    only rows that counted the same events the same way. A digest: it is part of the
    table's key.
    """
    return _rollup_digest(objective.model_dump(mode="json"))


def _rollup_digest(dumped: dict[str, Any]) -> str:
    kept = {k: v for k, v in dumped.items() if k in ROLLUP_FIELDS}
    return hashlib.sha256(orjson.dumps(kept, option=orjson.OPT_SORT_KEYS)).hexdigest()


@lru_cache(maxsize=4096)
def _rollup_fingerprint_of(fingerprint: str) -> str:
    try:
        _envelope, dumped, _calendar = orjson.loads(fingerprint)
    except (orjson.JSONDecodeError, ValueError, TypeError):
        return ""
    if not isinstance(dumped, dict) or dumped.get("kind") not in ("ratio", "quantile"):
        return ""
    return _rollup_digest(dumped)


def rollup_fingerprint_of(objective: CompiledObjective) -> str:
    """:func:`rollup_fingerprint` of a compiled objective ("" when built by hand, or for
    kinds without rollups).

    Derived from its ``fingerprint`` (which holds the objective as compiled) and cached
    by it: the compiled classes keep no field for it, and the engine asks once per
    objective and checkpoint.
    """
    return _rollup_fingerprint_of(objective.fingerprint) if objective.fingerprint else ""
