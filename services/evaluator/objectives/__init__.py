"""Compiled objectives: one module per objective kind, all behind :mod:`.base`."""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from services.evaluator.objectives.base import CompiledObjective
from services.evaluator.objectives.deadline import CompiledDeadline
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


def compile_catalog(
    catalog: Catalog, clock: Clock, calendars: Mapping[str, CalendarSpec] | None = None
) -> Iterator[CompiledObjective]:
    """Every objective of every agreement, compiled; ``clock`` stamps ``detected_at``.

    ``calendars`` are the Calendar specs by name that deadline objectives refer to (by
    default the catalog's Calendars); an objective naming an unknown calendar raises
    ``ValueError`` (a definitions error).
    """
    if calendars is None:
        calendars = {
            n: d.spec for n, d in catalog.of("Calendar").items() if isinstance(d, Calendar)
        }
    for name in sorted(catalog.agreements):
        agreement = catalog.agreements[name]
        for objective in agreement.spec.objectives:
            if isinstance(objective, RatioObjective):
                yield CompiledRatio(agreement, objective, clock)
            elif isinstance(objective, QuantileObjective):
                yield CompiledQuantile(agreement, objective, clock)
            elif isinstance(objective, FreshnessObjective):
                yield CompiledFreshness(agreement, objective, clock)
            else:
                cal_name = objective.calendar
                if cal_name is not None and cal_name not in calendars:
                    raise ValueError(
                        f"objective {objective.name!r}: no Calendar named {cal_name!r}"
                    )
                spec = calendars[cal_name] if cal_name is not None else None
                yield CompiledDeadline(agreement, objective, clock, spec)
