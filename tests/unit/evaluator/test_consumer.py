"""The consume loop's order of effects, against fakes: acks, then the PostgreSQL
checkpoint, then the Kafka commit; revoke and assign move state through the store."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from services.evaluator.checkpoint import StoredCheckpoint
from services.evaluator.consumer import EvaluatorConsumer
from services.evaluator.engine import DedupDelta, RebuildRequest, Rollup
from services.evaluator.exceptions import EvaluatorError
from services.evaluator.metrics import EvaluatorMetrics
from shared.metrics import new_registry
from shared.schemas import Breach
from shared.settings import Settings
from tests.unit.evaluator.factories import T0, agreement, engine, event, fixed_clock

TOPIC = "slawatch.events"


@dataclass(frozen=True)
class Record:
    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


class Effects:
    """Every side effect, in order."""

    def __init__(self) -> None:
        self.log: list[tuple[str, Any]] = []
        self.rollups: list[object] = []
        self.stored: dict[int, StoredCheckpoint] = {}
        self.dedup: dict[int, list[tuple[int, list[str]]]] = {}
        self.fail_load = False
        self.fail_save = False

    # producer
    async def send(self, topic: str, value: bytes, key: bytes) -> Any:
        self.log.append(("send", topic.rsplit(".", 1)[1]))

        async def ack() -> None:
            self.log.append(("ack", topic.rsplit(".", 1)[1]))

        return ack()

    # checkpoint store
    async def save(
        self,
        checkpoints: Mapping[int, StoredCheckpoint],
        rollups: Sequence[object] = (),
        dedup: Mapping[int, DedupDelta] | None = None,
    ) -> None:
        if self.fail_save:
            raise OSError("database down")
        self.rollups.extend(rollups)
        self.log.append(("save", {p: c.next_offset for p, c in checkpoints.items()}))
        self.stored.update(checkpoints)
        for p, delta in (dedup or {}).items():
            self.dedup.setdefault(p, []).extend(delta.new)

    async def load(self, partitions: list[int]) -> dict[int, StoredCheckpoint]:
        if self.fail_load:
            raise OSError("database down")
        return {
            p: StoredCheckpoint(
                self.stored[p].state, self.stored[p].next_offset, self.dedup.get(p, [])
            )
            for p in partitions
            if p in self.stored
        }

    async def load_rollups(self, requests: Sequence[RebuildRequest]) -> dict[str, list[Rollup]]:
        self.log.append(("load_rollups", [r.objective_id for r in requests]))
        if self.fail_load:
            raise OSError("database down")
        return {
            r.objective_id: [
                x
                for x in self.rollups
                if isinstance(x, Rollup)
                and (x.objective_id, x.fingerprint) == (r.objective_id, r.fingerprint)
            ]
            for r in requests
        }

    # kafka consumer
    async def commit(self, offsets: dict[Any, int]) -> None:
        self.log.append(("commit", {tp.partition: o for tp, o in offsets.items()}))

    def seek(self, tp: Any, offset: int) -> None:
        self.log.append(("seek", (tp.partition, offset)))


def build(effects: Effects, **settings: Any) -> EvaluatorConsumer:
    evaluator = engine(agreement(target=0.5))
    loop = EvaluatorConsumer(
        Settings(kafka_bootstrap="127.0.0.1:1", **settings),
        evaluator,
        effects,  # type: ignore[arg-type]
        effects,
        EvaluatorMetrics(new_registry()),
        fixed_clock,
    )
    loop._consumer = effects
    return loop


def batch(partition: int, first_offset: int, values: list[bytes | None]) -> dict[Any, list[Any]]:
    records = [Record(TOPIC, partition, first_offset + i, v) for i, v in enumerate(values)]
    return {TP(TOPIC, partition): records}


async def test_acks_then_checkpoint_then_commit() -> None:
    effects = Effects()
    loop = build(effects, checkpoint_every_events=3)
    await loop.on_assigned([0])
    values = [event(T0, "bad").to_json(), b"{broken", event(T0 + 1, "good").to_json()]
    await loop._handle(batch(0, 0, values))
    await loop._maybe_checkpoint()
    assert effects.log == [
        ("send", "breaches"),  # opened
        ("send", "breaches"),  # resolved (1/2 = target)
        ("send", "deadletter"),
        ("ack", "breaches"),
        ("ack", "breaches"),
        ("ack", "deadletter"),
        ("save", {0: 3}),
        ("commit", {0: 3}),
    ]


async def test_redelivered_records_are_skipped_and_foreign_partitions_ignored() -> None:
    effects = Effects()
    loop = build(effects)
    await loop.on_assigned([0])
    await loop._handle(batch(0, 0, [event(T0, "good").to_json()]))
    await loop._handle(batch(0, 0, [event(T0, "bad").to_json(), event(T0, "good").to_json()]))
    await loop._handle(batch(1, 0, [event(T0, "bad").to_json()]))
    [status] = loop.engine.status("acme-checkout/availability")
    assert (status.partition, status.status.good, status.status.valid) == (0, 2, 2)


async def test_revoke_checkpoints_and_assign_restores_and_seeks() -> None:
    effects = Effects()
    loop = build(effects)
    await loop.on_assigned([0, 1])
    outcomes = ["good", "bad", "bad"]  # 1/3 < 0.5: a breach is open when revoked
    await loop._handle(batch(0, 40, [event(T0, o).to_json() for o in outcomes]))
    effects.log.clear()
    await loop.on_revoked([0, 1])
    assert effects.log == [("save", {0: 43}), ("commit", {0: 43})]
    assert loop.engine.partitions == []

    successor = build(effects)
    await successor.on_assigned([0, 1])
    assert effects.log[-1] == ("seek", (0, 43))
    [status] = successor.engine.status("acme-checkout/availability")
    assert (status.status.good, status.status.valid) == (1, 3)
    assert status.status.active_breach_id is not None
    [resolved] = await _handle_breaches(successor, effects, 0, 43, "good")
    assert (resolved.kind, resolved.id) == ("breach.resolved", status.status.active_breach_id)
    assert (resolved.windows[0].good, resolved.windows[0].valid) == (2, 4)


async def _handle_breaches(
    loop: EvaluatorConsumer, effects: Effects, partition: int, offset: int, outcome: str
) -> list[Breach]:
    sent: list[Breach] = []
    original = effects.send

    async def capture(topic: str, value: bytes, key: bytes) -> Any:
        if topic.endswith(".breaches"):
            sent.append(Breach.from_json(value))
        return await original(topic, value, key)

    effects.send = capture  # type: ignore[method-assign]
    await loop._handle(batch(partition, offset, [event(T0 + 5, outcome).to_json()]))
    return sent


async def test_a_failed_restore_is_fatal() -> None:
    effects = Effects()
    effects.fail_load = True
    loop = build(effects)
    await loop.on_assigned([0])
    assert loop.engine.partitions == []
    assert isinstance(loop._fatal, OSError)


@pytest.mark.parametrize("every", [1, 100])
async def test_checkpoint_cadence_by_count(every: int) -> None:
    effects = Effects()
    loop = build(effects, checkpoint_every_events=every, checkpoint_interval_ms=3_600_000)
    await loop.on_assigned([0])
    await loop._handle(batch(0, 0, [event(T0, "good").to_json()]))
    await loop._maybe_checkpoint()
    saves = [entry for entry in effects.log if entry[0] == "save"]
    assert saves == ([("save", {0: 1})] if every == 1 else [])


@pytest.mark.parametrize("store_fails", [False, True])
async def test_reload_checkpoints_then_rebuilds_from_the_stored_rollups(store_fails: bool) -> None:
    effects = Effects()
    loop = build(effects, checkpoint_interval_ms=3_600_000)
    await loop.on_assigned([0])
    # 3 bad, then (two minutes later) 2 good: the 1m window holds only the good ones.
    outcomes = [(0, "bad"), (1, "bad"), (2, "bad"), (120_000, "good"), (120_001, "good")]
    await loop._handle(batch(0, 0, [event(T0 + t, o).to_json() for t, o in outcomes]))
    effects.log.clear()
    effects.fail_load = store_fails
    longer = list(engine(agreement(target=0.5, window="10m")).objectives.values())
    changes = await loop.reload(longer)
    assert effects.log[:3] == [
        ("save", {0: 5}),  # the pending rollups are stored first
        ("commit", {0: 5}),
        ("load_rollups", ["acme-checkout/availability"]),
    ]
    assert sum(r.valid for r in effects.rollups if isinstance(r, Rollup)) == 5  # once each
    statuses = [s.status for s in loop.engine.status("acme-checkout/availability")]
    if store_fails:  # the reload still happens: the objective restarts empty
        assert changes == {"acme-checkout/availability": "restarted"}
        assert statuses == []
    else:
        assert changes == {"acme-checkout/availability": "rebuilt"}
        assert [(s.window, s.good, s.valid) for s in statuses] == [("10m", 2, 5)]


async def test_a_failed_reload_stops_the_consumer_without_another_checkpoint() -> None:
    """Rollups taken for a checkpoint that failed are in no row: the consumer must not
    write a later checkpoint past those events, so it stops and the next run replays."""
    effects = Effects()
    loop = build(effects, checkpoint_interval_ms=3_600_000)
    await loop.on_assigned([0])
    await loop._handle(batch(0, 0, [event(T0 + i, "bad").to_json() for i in range(3)]))
    effects.fail_save = True
    longer = list(engine(agreement(window="10m")).objectives.values())
    with pytest.raises(OSError):
        await loop.reload(longer)
    effects.fail_save = False
    effects.log.clear()
    with pytest.raises(EvaluatorError):
        await loop.reload(longer)
    await loop.on_revoked([0])
    assert [entry for entry in effects.log if entry[0] == "save"] == []


async def test_reload_publishes_withdrawn_breaches_then_checkpoints() -> None:
    effects = Effects()
    loop = build(effects, checkpoint_interval_ms=3_600_000)
    await loop.on_assigned([0])
    await loop._handle(batch(0, 0, [event(T0 + i, "bad").to_json() for i in range(3)]))
    effects.log.clear()
    other_rule = list(engine(agreement(good={"value": "<= 300"})).objectives.values())
    assert await loop.reload(other_rule) == {"acme-checkout/availability": "restarted"}
    kinds = [entry[0] for entry in effects.log]
    # checkpoint, the resolution published and acknowledged, then the reloaded state
    assert kinds == ["save", "commit", "send", "ack", "save", "commit"]
