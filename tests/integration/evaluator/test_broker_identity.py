"""Restart safety across logs: an embedded broker that comes back empty (a new log,
with a new cluster id) must not leave the evaluator seeking to the old log's offsets.

Each test runs its own embedded broker (the session's must not restart) on the
session's PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.evaluator.main import run
from shared.embedded import ChildProcess, free_port, start_broker
from shared.metrics import new_registry
from shared.settings import Settings
from shared.timeutil import wall_clock_ms
from shared.topics import ensure_topics
from tests.integration.evaluator.test_evaluator import (
    apply_definitions,
    evaluator_settings_of,
    eventually,
    make_event,
    produce,
    status,
    valid_count,
)

pytestmark = pytest.mark.integration


class Broker:
    """An embedded broker of this test, restartable on the same port."""

    def __init__(self, log_dir: Path) -> None:
        self.port = free_port()
        self.log_dir = log_dir
        self.child: ChildProcess | None = None
        self.starts = 0

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"

    def start(self) -> None:
        self.starts += 1
        self.child = start_broker(self.port, self.log_dir / f"broker-{self.starts}.log")

    def stop(self) -> None:
        if self.child is not None:
            self.child.stop(grace_s=5)
            self.child = None


@pytest.fixture
def own_broker(tmp_path: Path) -> Iterator[Broker]:
    own = Broker(tmp_path)
    own.start()
    try:
        yield own
    finally:
        own.stop()


def resets_of(registry: CollectorRegistry, settings: Settings, reason: str) -> float:
    labels = {"topic": f"{settings.topic_prefix}.events", "reason": reason}
    return registry.get_sample_value("slawatch_offset_resets_total", labels) or 0.0


def events(first: int, count: int) -> list[bytes]:
    now = wall_clock_ms()
    return [make_event(i, now + i, "good").to_json() for i in range(first, first + count)]


async def test_a_checkpoint_of_the_previous_log_is_not_used(
    own_broker: Broker,
    settings: Settings,
    make_settings: Callable[..., Settings],
    engine: AsyncEngine,
) -> None:
    """Stored offset 20 in the old log; the new log holds 30 events, so only the
    identity (not the log end) tells the offset is of another log."""
    await apply_definitions(engine, target=0.5, window="1h", alerting={"minEvents": 5})
    own = evaluator_settings_of(make_settings, kafka_bootstrap=own_broker.bootstrap)
    await ensure_topics(own)
    await produce(own, events(0, 20))
    stop = asyncio.Event()
    task = asyncio.create_task(run(own, stop, registry=new_registry()))
    await eventually(lambda: _valid(own, 20), "20 events evaluated")
    stop.set()
    await asyncio.wait_for(task, own.shutdown_grace_s + 5)

    own_broker.stop()
    own_broker.start()  # memory only: an empty log with a new cluster id
    await ensure_topics(own)
    await produce(own, events(20, 30))
    registry = new_registry()
    stop = asyncio.Event()
    again = evaluator_settings_of(make_settings, kafka_bootstrap=own_broker.bootstrap)
    task = asyncio.create_task(run(again, stop, registry=registry))
    try:
        await eventually(lambda: _valid(again, 50), "the new log's 30 events on top of 20")
        assert resets_of(registry, again, "other_log") == 1
        assert resets_of(registry, again, "beyond_log_end") == 0
    finally:
        stop.set()
        await asyncio.wait_for(task, again.shutdown_grace_s + 5)


async def test_a_broker_restart_under_a_running_evaluator_loses_no_later_event(
    own_broker: Broker,
    settings: Settings,
    make_settings: Callable[..., Settings],
    engine: AsyncEngine,
) -> None:
    await apply_definitions(engine, target=0.5, window="1h", alerting={"minEvents": 5})
    own = evaluator_settings_of(make_settings, kafka_bootstrap=own_broker.bootstrap)
    await ensure_topics(own)
    await produce(own, events(0, 20))
    registry = new_registry()
    stop = asyncio.Event()
    task = asyncio.create_task(run(own, stop, registry=registry))
    try:
        await eventually(lambda: _valid(own, 20), "20 events evaluated")
        own_broker.stop()
        own_broker.start()
        await ensure_topics(own)
        await produce(own, events(20, 5))
        await eventually(lambda: _valid(own, 25), "events of the new log evaluated", 60)
        assert (
            resets_of(registry, own, "other_log") + resets_of(registry, own, "beyond_log_end") >= 1
        )
        assert not task.done()
    finally:
        stop.set()
        await asyncio.wait_for(task, own.shutdown_grace_s + 5)


async def _valid(settings: Settings, count: int) -> bool:
    return valid_count(await status(settings)) == count
