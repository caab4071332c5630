"""Rebalance: two evaluators share the events; one stops mid-stream and its partition
moves (checkpointed on revoke, restored on assignment); the result is that of one
uninterrupted run."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.definitions.load import parse_document
from shared.definitions.store import apply
from shared.schemas import Breach
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.evaluator.test_evaluator import (
    T0,
    evaluator,
    evaluator_settings_of,
    eventually,
    make_event,
    produce,
    read_topic,
    status,
)
from tests.unit.evaluator.factories import agreement, agreement_doc
from tests.unit.evaluator.factories import engine as pure_engine

pytestmark = pytest.mark.integration

SERVICES = ("checkout", "cart")


async def test_stopping_one_of_two_evaluators_mid_stream_changes_nothing(
    settings: Settings, make_settings: Callable[..., Settings], engine: AsyncEngine
) -> None:
    objective = {
        "target": 0.8,
        "window": "20s",
        "groupBy": ["customer"],
        "alerting": {"minEvents": 5, "hysteresis": 0.05},
    }
    async with db.sessions(engine)() as session:
        docs = [agreement_doc(f"acme-{s}", service=s, **objective) for s in SERVICES]
        await apply(session, [parse_document(d) for d in docs])
        await session.commit()
    pattern = (["good"] * 40 + ["bad"] * 12) * 3
    streams = {
        s: [
            make_event(i, T0 + i * 700, o, customer="acme" if i % 3 else "globex", service=s)
            for i, o in enumerate(pattern)
        ]
        for s in SERVICES
    }
    pure = pure_engine(*(agreement(f"acme-{s}", service=s, **objective) for s in SERVICES))
    expected: set[tuple[str, str, int]] = set()
    for partition, service in enumerate(SERVICES):
        pure.assign(partition, None)
        for e in streams[service]:
            expected |= {(b.id, b.kind, b.at) for b in pure.process(partition, e).breaches}
    assert len(expected) >= 8

    async def counted(_instances: list[Settings], count: int) -> bool:
        """Every partition checkpointed at ``count`` (one service per partition)."""
        async with engine.connect() as conn:
            rows = await conn.execute(text("SELECT next_offset FROM evaluator_checkpoints"))
            offsets = [r[0] for r in rows]
        return offsets == [count, count]

    async def split(instances: list[Settings]) -> bool:
        owned = [(await status(i)).get("partitions") or [] for i in instances]
        return all(len(ps) == 1 for ps in owned)

    half = len(pattern) // 2
    first = evaluator_settings_of(make_settings, checkpoint_every_events=7)
    second = evaluator_settings_of(make_settings, checkpoint_every_events=7)

    async def serving(instance: Settings) -> bool:
        return bool((await status(instance)).get("partitions"))

    async with evaluator(first):
        # One at a time: both run migrations at start (alembic is not safe to run twice
        # concurrently in one process).
        await eventually(lambda: serving(first), "the first instance", 30)
        async with evaluator(second):
            await eventually(lambda: split([first, second]), "one partition per instance", 30)
            for service in SERVICES:
                await produce(
                    settings, [e.to_json() for e in streams[service][:half]], key=service.encode()
                )
            await eventually(lambda: counted([first, second], half), "the first half", 30)
        # The second instance stopped mid-stream: the first takes its partition over.
        for service in SERVICES:
            await produce(
                settings, [e.to_json() for e in streams[service][half:]], key=service.encode()
            )
        await eventually(lambda: counted([first], len(pattern)), "every event on one", 40)
        raw = await read_topic(
            settings,
            Topics.from_settings(settings).breaches,
            lambda got: {(b.id, b.kind, b.at) for b in map(Breach.from_json, got)} >= expected,
        )
    assert {(b.id, b.kind, b.at) for b in map(Breach.from_json, raw)} == expected
