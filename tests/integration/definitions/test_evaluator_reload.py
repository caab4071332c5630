"""Hot reload seen by a running evaluator: a tighter target applied through the REST
API is in force within 2 s, and the next events breach it without a restart."""

from __future__ import annotations

import time
from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.config import config_router
from shared import db
from shared.schemas import Breach
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.evaluator.test_evaluator import (
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
from tests.keys import api_client, guarded_app
from tests.unit.evaluator.factories import agreement_doc

pytestmark = pytest.mark.integration


async def test_tighter_target_breaches_without_restart(
    settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    await apply_definitions(engine, target=0.5, alerting={"minEvents": 5})
    evaluator_settings = evaluator_settings_of(make_settings)
    topics = Topics.from_settings(settings)
    app = guarded_app(config_router(db.sessions(engine)))
    async with (
        evaluator(evaluator_settings),
        api_client(app, "http://c") as api,
    ):
        # 8 good, 2 bad: 0.8 meets 0.5
        await produce(
            settings,
            [make_event(i, T0 + i * 100, "good" if i < 8 else "bad").to_json() for i in range(10)],
        )
        await eventually(
            lambda: _valid_is(evaluator_settings, 10), "the first events counted", 30.0
        )

        tighter = agreement_doc(target=0.9, alerting={"minEvents": 5})
        applied_at = time.monotonic()
        response = await api.put(
            "/v1/agreements/acme-checkout",
            json=tighter,
            headers={"if-match": '"1"', "x-slawatch-reason": "tighter target"},
        )
        assert response.status_code == 200, response.text
        await eventually(lambda: _reloaded(evaluator_settings), "the new definition", 2.0)
        assert time.monotonic() - applied_at < 2.0

        # Six more bad events breach 0.9 whether the window kept its counts (8/16) or
        # restarted with the change (0/6; the evaluator restarts a changed objective).
        await produce(
            settings, [make_event(10 + i, T0 + 1_000 + i * 100, "bad").to_json() for i in range(6)]
        )
        raw = await read_topic(settings, topics.breaches, lambda got: len(got) >= 1)

    opened = Breach.from_json(raw[0])
    assert opened.kind == "breach.opened"
    assert [w.target for w in opened.windows] == [0.9]


async def _valid_is(settings: Settings, count: int) -> bool:
    return valid_count(await status(settings)) == count


async def _reloaded(settings: Settings) -> bool:
    """The changed objective is in force: its groups show the new target, or (a changed
    objective restarts empty) it has none yet."""
    body = await status(settings)
    groups = body.get("groups")
    return groups is not None and all(g["target"] == 0.9 for g in groups)


async def test_a_withdrawn_rule_resolves_its_open_breach(
    settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    """An objective whose selection changes restarts; the breach its old rule had open
    is resolved on the breaches topic, not left open for the notifier forever."""
    await apply_definitions(engine, target=0.9, alerting={"minEvents": 3})
    evaluator_settings = evaluator_settings_of(make_settings)
    topics = Topics.from_settings(settings)
    app = guarded_app(config_router(db.sessions(engine)))
    async with (
        evaluator(evaluator_settings),
        api_client(app, "http://c") as api,
    ):
        await produce(settings, [make_event(i, T0 + i * 100, "bad").to_json() for i in range(4)])
        await read_topic(settings, topics.breaches, lambda got: len(got) >= 1)
        other_rule = agreement_doc(target=0.9, alerting={"minEvents": 3}, good={"value": "<= 300"})
        response = await api.put(
            "/v1/agreements/acme-checkout", json=other_rule, headers={"if-match": '"1"'}
        )
        assert response.status_code == 200, response.text
        raw = await read_topic(settings, topics.breaches, lambda got: len(got) >= 2)

    opened, resolved = (Breach.from_json(r) for r in raw[:2])
    assert (opened.kind, resolved.kind) == ("breach.opened", "breach.resolved")
    assert resolved.id == opened.id
    assert resolved.at == T0 + 300  # the group's clock: its newest event
