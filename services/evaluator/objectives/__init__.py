"""Compiled objectives: one module per objective kind, all behind :mod:`.base`."""

from __future__ import annotations

from collections.abc import Iterator

from services.evaluator.objectives.base import CompiledObjective
from services.evaluator.objectives.quantile import CompiledQuantile
from services.evaluator.objectives.ratio import CompiledRatio
from shared.definitions.model import QuantileObjective, RatioObjective
from shared.definitions.store import Catalog
from shared.timeutil import Clock


def compile_catalog(catalog: Catalog, clock: Clock) -> Iterator[CompiledObjective]:
    """Every objective of every agreement, compiled; ``clock`` stamps ``detected_at``."""
    for name in sorted(catalog.agreements):
        agreement = catalog.agreements[name]
        for objective in agreement.spec.objectives:
            if isinstance(objective, RatioObjective):
                yield CompiledRatio(agreement, objective, clock)
            elif isinstance(objective, QuantileObjective):
                yield CompiledQuantile(agreement, objective, clock)
