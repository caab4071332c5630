"""The evaluator's limits come from settings: the engine main builds, hot reload, the
backtest; and the refused-start metric."""

from __future__ import annotations

import inspect
from typing import Any

from services.evaluator import backtest
from services.evaluator.engine import Engine
from services.evaluator.main import compile_objectives, new_engine
from services.evaluator.metrics import EvaluatorMetrics
from services.evaluator.objectives import compile_catalog
from services.evaluator.objectives.base import MAX_GROUPS, OVERFLOW
from services.evaluator.objectives.deadline import MAX_OPEN_ENTITIES, CompiledDeadline
from shared.definitions.model import Agreement
from shared.definitions.store import Catalog
from shared.metrics import new_registry
from shared.schemas import Event
from shared.settings import Settings
from tests.unit.evaluator.factories import T0, agreement, event, fixed_clock

DEADLINE: dict[str, Any] = {
    "kind": "deadline",
    "service": "checkout",
    "start": ["opened"],
    "stop": ["closed"],
    "target": "15m",
    "good": None,
    "window": None,
    "select": None,
    "alerting": None,
}


def catalog(*agreements: Agreement) -> Catalog:
    return Catalog(agreements={a.metadata.name: a for a in agreements}, receivers={})


def settings(**values: Any) -> Settings:
    return Settings(kafka_bootstrap="127.0.0.1:1", **values)


def opened(entity: str, at: int) -> Event:
    return Event(id=f"{entity}-{at}", service="checkout", type="opened", time=at, entity=entity)


def test_code_defaults_are_the_settings_defaults() -> None:
    defaults = Settings.model_fields
    assert defaults["evaluator_max_groups"].default == MAX_GROUPS
    assert defaults["evaluator_max_open_entities"].default == MAX_OPEN_ENTITIES
    engine_default = inspect.signature(Engine.__init__).parameters["dedup_horizon_ms"].default
    assert defaults["dedup_horizon_ms"].default == engine_default
    run = inspect.signature(backtest.run).parameters
    for name, value in backtest.limits(Settings()).items():
        assert run[name].default == value, name


def test_engine_built_by_main_has_the_configured_horizon() -> None:
    engine = new_engine(
        catalog(agreement()),
        settings(dedup_horizon_ms=1_000, allowed_lateness_ms=1_000),
        fixed_clock,
    )
    assert engine.dedup_horizon_ms == 1_000
    engine.assign(0, None)
    engine.process(0, event(T0, id="x"))
    assert engine.process(0, event(T0 + 500, id="x")).duplicate
    engine.process(0, event(T0 + 1_001, id="y"))  # pushes "x" past the horizon
    assert not engine.process(0, event(T0 + 600, id="x")).duplicate


def test_a_small_group_cap_through_settings_folds_groups() -> None:
    engine = new_engine(
        catalog(agreement(groupBy=["customer"])), settings(evaluator_max_groups=2), fixed_clock
    )
    engine.assign(0, None)
    for customer in ("a", "b", "c", "d"):
        engine.process(0, event(T0, attributes={"customer": customer}))
    (objective_id,) = engine.objectives
    groups = sorted(s.status.group["customer"] for s in engine.status(objective_id))
    assert groups == [OVERFLOW, "a", "b"]
    assert engine.take_overflow() == {objective_id: 2}


def test_hot_reload_compiles_with_the_same_limits() -> None:
    compiled = compile_objectives(
        catalog(agreement(**DEADLINE)),
        settings(evaluator_max_groups=3, evaluator_max_open_entities=4),
        fixed_clock,
    )
    (objective,) = compiled
    assert isinstance(objective, CompiledDeadline)
    assert (objective.max_groups, objective.max_open_entities) == (3, 4)


def test_backtest_takes_the_limits_from_settings() -> None:
    events = [opened(e, T0 + i) for i, e in enumerate("ABC")]
    limits = backtest.limits(settings(evaluator_max_open_entities=1))
    until = T0 + 20 * 60_000
    result = backtest.run(
        catalog(agreement(**DEADLINE)), events, clock=fixed_clock, until=until, **limits
    )
    assert {b.group["entity"] for b in result.breaches} == {"A"}
    unlimited = backtest.run(catalog(agreement(**DEADLINE)), events, clock=fixed_clock, until=until)
    assert {b.group["entity"] for b in unlimited.breaches} == {"A", "B", "C"}


def test_refused_starts_are_counted_once_in_the_metric() -> None:
    engine = Engine(
        compile_catalog(catalog(agreement(**DEADLINE)), fixed_clock, max_open_entities=1),
        allowed_lateness_ms=30_000,
    )
    engine.assign(0, None)
    for i, entity in enumerate("ABC"):
        engine.process(0, opened(entity, T0 + i))
    registry = new_registry()
    metrics = EvaluatorMetrics(registry)
    assert metrics.count_refused(engine) == {"acme-checkout/availability": 2}
    assert metrics.count_refused(engine) == {}
    name = "slawatch_deadline_entities_refused_total"
    assert registry.get_sample_value(name, {"objective": "acme-checkout/availability"}) == 2
