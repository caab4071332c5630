"""A real notifier process (``python -m services.cli notifier``) SIGKILLed in the middle
of a batch: after a restart every notification reaches every receiver, each one
exactly once by idempotency key (at least once on the wire: the rows in flight at the
kill are sent again, with the same key, after their lease)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared.settings import Settings
from tests.integration.notifier.support import (
    agreement_doc,
    apply_docs,
    eventually,
    receiver_doc,
    scalar,
)
from tests.integration.notifier.test_service import publish
from tests.unit.notifier.support import RecordingServer, make_breach, unused_port

pytestmark = pytest.mark.integration

ROOT = Path(__file__).resolve().parents[3]
COUNT = 20


def start(settings: Settings, log: Path) -> subprocess.Popen[bytes]:
    env = {
        **os.environ,
        "SLAWATCH_KAFKA_BOOTSTRAP": settings.kafka_bootstrap or "",
        "SLAWATCH_DATABASE_URL": settings.database_url or "",
        "SLAWATCH_TOPIC_PREFIX": settings.topic_prefix,
        "SLAWATCH_NOTIFIER_PORT": str(settings.notifier_port),
        "SLAWATCH_DELIVERY_TIMEOUT_MS": "2000",
        "SLAWATCH_LEASE_MARGIN_MS": "500",
        "SLAWATCH_DELIVERY_POLL_INTERVAL_MS": "100",
        "SLAWATCH_KAFKA_SESSION_TIMEOUT_MS": "3000",
        "SLAWATCH_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
        "SLAWATCH_EVENTS_PARTITIONS": "2",
        "SLAWATCH_RAW_EVENTS_PARTITIONS": "2",
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "services.cli", "notifier"],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


async def test_sigkill_mid_batch_then_restart_delivers_each_exactly_once_by_key(
    settings: Settings, make_settings: Any, engine: AsyncEngine, tmp_path: Path
) -> None:
    settings = make_settings(notifier_port=unused_port())
    breaches = [make_breach(id=f"{i:032d}") for i in range(COUNT)]
    expected = {b.event_key for b in breaches}
    log = tmp_path / "notifier.log"
    async with RecordingServer(delay_s=0.15) as a, RecordingServer(delay_s=0.15) as b:
        await apply_docs(
            engine,
            receiver_doc("a", a.url),
            receiver_doc("b", b.url),
            agreement_doc([{"receivers": ["a", "b"]}]),
        )
        await publish(settings, *(x.to_json() for x in breaches))
        first = start(settings, log)
        try:
            await a.wait_for(5, timeout_s=30)  # mid-batch: more are in flight right now
        finally:
            first.send_signal(signal.SIGKILL)
            first.wait(10)
        in_flight = await scalar(
            engine, "SELECT count(*) FROM deliveries WHERE status='delivering'"
        )
        second = start(settings, log)
        try:

            async def all_delivered() -> bool:
                done = await scalar(
                    engine, "SELECT count(*) FROM deliveries WHERE status = 'delivered'"
                )
                return bool(done == 2 * COUNT)

            await eventually(all_delivered, timeout_s=60, every_s=0.2)
        finally:
            second.send_signal(signal.SIGTERM)
            assert second.wait(20) == 0, log.read_text()[-3000:]
    assert in_flight > 0, "the kill did not land mid-batch"
    for server in (a, b):
        keys = [r.headers["idempotency-key"] for r in server.requests]
        assert set(keys) == expected  # every notification, and nothing else
        # Repeats only for rows in flight at the kill, always with the same key.
        assert len(keys) - len(set(keys)) <= in_flight
    assert await scalar(engine, "SELECT count(*) FROM deliveries") == 2 * COUNT
    assert await scalar(engine, "SELECT count(*) FROM breach_events") == COUNT
    delivered_attempts = await scalar(
        engine, "SELECT count(*) FROM delivery_attempts WHERE outcome = 'delivered'"
    )
    assert delivered_attempts == 2 * COUNT
