"""Hot reload rebuilds a changed window from the per-minute rollups in PostgreSQL: a
running evaluator whose 5m window has lost early events gets a 10m window holding
them again, and the next decision uses them."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from services.evaluator.objectives import rollup_fingerprint
from shared.definitions.model import RatioObjective
from shared.schemas import Breach, breach_id
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.evaluator.test_evaluator import (
    OBJECTIVE_ID,
    T0,
    apply_definitions,
    evaluator,
    evaluator_settings_of,
    eventually,
    make_event,
    produce,
    read_topic,
    status,
    valid_count,
)
from tests.unit.evaluator.factories import agreement

pytestmark = pytest.mark.integration

# No decision before the change: fewer than 12 valid events in any 5m window.
ALERTING = {"minEvents": 12}


async def test_a_longer_window_is_rebuilt_from_rollups(
    settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    await apply_definitions(engine, window="5m", alerting=ALERTING)
    live = evaluator_settings_of(make_settings)
    topics = Topics.from_settings(settings)
    bad = [make_event(i, T0 + i * 1_000, "bad") for i in range(6)]
    good = [make_event(10 + i, T0 + 420_000 + i * 1_000, "good") for i in range(10)]
    async with evaluator(live):
        await produce(settings, [e.to_json() for e in bad])
        await eventually(lambda: _window_is(live, "5m", 6), "the bad events counted")
        await produce(settings, [e.to_json() for e in good])
        # Seven minutes later the 5m window has let the bad events go.
        await eventually(lambda: _window_is(live, "5m", 10), "only the good events left")

        applied_at = time.monotonic()
        await apply_definitions(engine, window="10m", alerting=ALERTING)
        await eventually(lambda: _window_is(live, "10m", 16), "the rebuilt 10m window", 2.0)
        assert time.monotonic() - applied_at < 2.0
        body = await status(live)
        assert [(g["good"], g["valid"], g["active_breach_id"]) for g in body["groups"]] == [
            (10, 16, None)
        ]

        # The next event reaches the next evaluation instant: 10/16 < 0.9 with 16 ≥ 12
        # valid events opens a breach on the rebuilt counts.
        await produce(settings, [make_event(20, T0 + 430_000, "good").to_json()])
        raw = await read_topic(settings, topics.breaches, lambda got: len(got) >= 1)

    [opened] = [Breach.from_json(r) for r in raw]
    assert (opened.kind, opened.id, opened.opened_at) == (
        "breach.opened",
        breach_id(OBJECTIVE_ID, {}, "threshold", T0 + 430_000),
        T0 + 430_000,
    )
    assert [(w.window, w.good, w.valid) for w in opened.windows] == [("10m", 10, 16)]

    # Every rollup row carries the fingerprint of what it measured (the same before
    # and after the window change).
    doc = agreement(window="10m", alerting=ALERTING)
    objective = doc.spec.objectives[0]
    assert isinstance(objective, RatioObjective)
    async with engine.connect() as connection:
        rows = (
            await connection.execute(
                text(
                    "SELECT fingerprint, sum(good), sum(valid) FROM evaluator_sli_rollups"
                    " WHERE objective_id = :oid GROUP BY fingerprint"
                ),
                {"oid": OBJECTIVE_ID},
            )
        ).all()
    assert [tuple(r) for r in rows] == [(rollup_fingerprint(objective), 11, 17)]


async def _window_is(settings: Settings, window: str, valid: int) -> bool:
    body = await status(settings)
    groups = body.get("groups", [])
    return (
        bool(groups) and all(g["window"] == window for g in groups) and (valid_count(body) == valid)
    )
