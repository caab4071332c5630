"""Hot reload: applied definitions reach a running evaluator; unchanged objectives keep
their state."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.definitions.load import parse_document
from shared.definitions.store import apply
from shared.settings import Settings
from tests.integration.evaluator.test_evaluator import (
    T0,
    apply_definitions,
    evaluator,
    evaluator_settings_of,
    eventually,
    make_event,
    produce,
    status,
    valid_count,
)
from tests.unit.evaluator.factories import agreement_doc

pytestmark = pytest.mark.integration


async def test_new_objective_loads_and_unchanged_state_stays(
    settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    await apply_definitions(engine, window="1h")
    live = evaluator_settings_of(make_settings)
    await produce(settings, [make_event(i, T0 + i * 100, "good").to_json() for i in range(5)])
    async with evaluator(live):

        async def counted() -> bool:
            return valid_count(await status(live)) == 5

        await eventually(counted, "five events counted")
        async with db.sessions(engine)() as session:
            await apply(session, [parse_document(agreement_doc("other-sla", window="1h"))])
            await session.commit()
        other = "/v1/objectives/other-sla/availability/status"

        async def loaded() -> bool:
            return "groups" in await status(live, other)

        await eventually(loaded, "the new objective", timeout_s=40)
        assert valid_count(await status(live)) == 5  # kept, not restarted
        await produce(settings, [make_event(9, T0 + 2_000, "bad").to_json()])

        async def both() -> bool:
            return (
                valid_count(await status(live)) == 6 and valid_count(await status(live, other)) == 1
            )

        await eventually(both, "the next event counted by both")
