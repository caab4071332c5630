"""``slawatch backtest`` publishes what the live evaluator publishes, field for field
except the wall-clock ``detected_at``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.cli import main as cli_main
from shared import db
from shared.definitions.load import load_paths
from shared.definitions.store import apply
from shared.schemas import Event
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.evaluator.test_evaluator import (
    evaluator,
    evaluator_settings_of,
    produce,
    read_topic,
)

pytestmark = pytest.mark.integration

T0 = 1_700_000_000_000
DEFS = """
apiVersion: slawatch/v1
kind: Agreement
metadata: {name: shop}
spec:
  type: SLA
  objectives:
    - name: availability
      kind: ratio
      service: checkout
      select: {type: request}
      good: {outcome: good}
      target: 0.99
      window: 1h
      groupBy: [customer]
      alerting:
        policy: burn-rate
        minEvents: 20
        burnRates:
          - {severity: page, factor: 10, long: 5m, short: 1m}
          - {severity: ticket, factor: 2, long: 20m, short: 2m}
    - name: latency
      kind: quantile
      service: checkout
      select: {type: request}
      quantile: 0.9
      threshold: 300
      window: 2m
      alerting: {minEvents: 10}
    - name: heartbeat
      kind: freshness
      service: checkout
      select: {type: heartbeat}
      maxSilence: 1m
"""


def stream() -> list[Event]:
    """40 minutes of traffic, two customers; a bad and slow phase; a heartbeat gap."""
    events: list[Event] = []
    for i in range(1_200):
        t = T0 + i * 2_000
        bad_phase = 400 <= i < 520
        customer = "acme" if i % 3 else "globex"
        events.append(
            Event(
                id=f"r{i}",
                service="checkout",
                type="request",
                time=t,
                outcome="bad" if bad_phase and i % 2 else "good",
                value=900.0 if bad_phase else 120.0 + i % 50,
                attributes={"customer": customer},
                received_at=t + 7,
            )
        )
        if i % 10 == 0 and not 700 <= i < 800:
            events.append(Event(id=f"h{i}", service="checkout", type="heartbeat", time=t + 1))
        if i % 97 == 0:  # a duplicate delivery
            events.append(events[-1])
    return events


def comparable(raw: bytes) -> dict[str, Any]:
    body: dict[str, Any] = orjson.loads(raw)
    body.pop("detected_at")
    return body


async def test_backtest_equals_the_live_evaluator(
    settings: Settings,
    make_settings: Callable[..., Settings],
    engine: AsyncEngine,
    tmp_path: Path,
) -> None:
    defs = tmp_path / "defs.yaml"
    defs.write_text(DEFS)
    events = stream()
    events_file = tmp_path / "events.ndjson"
    events_file.write_bytes(b"".join(e.to_json() + b"\n" for e in events))
    out = tmp_path / "breaches.ndjson"
    assert (
        cli_main(["backtest", "--defs", str(defs), "--events", str(events_file), "--out", str(out)])
        == 0
    )
    offline = [comparable(line) for line in out.read_bytes().splitlines()]
    kinds = {b["kind"] for b in offline}
    assert {"breach.opened", "breach.resolved"} <= kinds
    assert {b["objective"] for b in offline} == {"availability", "latency", "heartbeat"}

    async with db.sessions(engine)() as session:
        await apply(session, load_paths([defs]))
        await session.commit()
    await produce(settings, [e.to_json() for e in events])
    live_settings = evaluator_settings_of(make_settings)
    async with evaluator(live_settings):
        raw = await read_topic(
            settings,
            Topics.from_settings(settings).breaches,
            lambda got: len(got) >= len(offline),
            timeout_s=60,
        )
    live = [comparable(r) for r in raw]

    def key(b: dict[str, Any]) -> tuple[str, str, int]:
        return (b["id"], b["kind"], b["at"])

    assert sorted(live, key=key) == sorted(offline, key=key)
