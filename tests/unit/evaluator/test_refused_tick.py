"""The idle tick counts the deadline starts refused at the open-entity cap."""

from __future__ import annotations

from services.evaluator.consumer import EvaluatorConsumer
from services.evaluator.engine import Engine
from services.evaluator.metrics import EvaluatorMetrics
from services.evaluator.objectives import compile_catalog
from shared.metrics import new_registry
from tests.unit.evaluator.factories import T0, agreement, fixed_clock
from tests.unit.evaluator.test_limits import DEADLINE, catalog, opened, settings


async def test_idle_tick_counts_refused_starts() -> None:
    engine = Engine(
        compile_catalog(catalog(agreement(**DEADLINE)), fixed_clock, max_open_entities=1),
        allowed_lateness_ms=30_000,
    )
    engine.assign(0, None)
    for i, entity in enumerate("ABC"):
        engine.process(0, opened(entity, T0 + i))
    registry = new_registry()
    now = [0]
    loop = EvaluatorConsumer(
        settings(idle_tick_ms=10),
        engine,
        None,  # type: ignore[arg-type]  # no checkpoint on a tick
        None,  # type: ignore[arg-type]  # nothing to publish: no timer due
        EvaluatorMetrics(registry),
        lambda: now[0],
    )
    now[0] = 100
    await loop._maybe_tick()
    name = "slawatch_deadline_entities_refused_total"
    labels = {"objective": "acme-checkout/availability"}
    assert registry.get_sample_value(name, labels) == 2
    now[0] = 200
    await loop._maybe_tick()  # taken once: not counted again
    assert registry.get_sample_value(name, labels) == 2
