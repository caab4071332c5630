"""The consume loop's order of effects, against fakes: acks, then the PostgreSQL
checkpoint, then the Kafka commit; revoke and assign move state through the store."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import pytest

from services.evaluator.checkpoint import StoredCheckpoint
from services.evaluator.consumer import EvaluatorConsumer
from services.evaluator.engine import DedupDelta, RebuildRequest, Rollup
from services.evaluator.exceptions import EvaluatorError
from services.evaluator.metrics import EvaluatorMetrics
from shared.logid import SHORT_LOG_GRACE_MS, LogIdentity
from shared.metrics import new_registry
from shared.schemas import Breach
from shared.settings import Settings
from tests.unit.evaluator.factories import (
    DETECTED_AT,
    T0,
    agreement,
    engine,
    event,
    fixed_clock,
)

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
        self.load_outages = 0  # loads that meet an outage before one succeeds
        self.log_identity: LogIdentity | None = LogIdentity("cluster-a", "topic-1")
        self.highwaters: dict[int, int] = {}
        self.rebased: dict[int, int] = {}

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
        rebased: Mapping[int, int] | None = None,
    ) -> None:
        if self.fail_save:
            raise OSError("database down")
        self.rollups.extend(rollups)
        self.log.append(("save", {p: c.next_offset for p, c in checkpoints.items()}))
        self.rebased.update(rebased or {})
        self.stored.update(checkpoints)
        for p, delta in (dedup or {}).items():
            self.dedup.setdefault(p, []).extend(delta.new)

    async def load(self, partitions: list[int]) -> dict[int, StoredCheckpoint]:
        if self.load_outages:
            self.load_outages -= 1
            raise OSError("database down")
        if self.fail_load:
            raise ValueError("a snapshot that does not decode")
        return {
            p: StoredCheckpoint(
                self.stored[p].state,
                self.stored[p].next_offset,
                self.stored[p].log,
                self.dedup.get(p, []),
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

    async def seek_to_beginning(self, tp: Any) -> None:
        self.log.append(("seek_to_beginning", tp.partition))

    def highwater(self, tp: Any) -> int | None:
        return self.highwaters.get(tp.partition)

    # broker identity
    async def identify(self) -> LogIdentity | None:
        return self.log_identity


def build(effects: Effects, **settings: Any) -> EvaluatorConsumer:
    evaluator = engine(agreement(target=0.5))
    loop = EvaluatorConsumer(
        Settings(kafka_bootstrap="127.0.0.1:1", **settings),
        evaluator,
        effects,  # type: ignore[arg-type]
        effects,
        EvaluatorMetrics(new_registry()),
        fixed_clock,
        identify=effects.identify,
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
    """Not an outage: processing without the state would count wrong."""
    effects = Effects()
    effects.fail_load = True
    loop = build(effects)
    await loop.on_assigned([0])
    assert loop.engine.partitions == []
    assert isinstance(loop._fatal, ValueError)


async def test_a_restore_waits_out_a_database_outage(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("services.evaluator.consumer.RESTORE_RETRY_MS", (1, 1))
    effects = Effects()
    await _stored_at(effects, 40, ["good"])
    effects.load_outages = 3
    loop = build(effects)
    await loop.on_assigned([0])
    assert loop._fatal is None
    assert effects.load_outages == 0
    assert effects.log == [("seek", (0, 40))]


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


async def _stored_at(effects: Effects, offset: int, outcomes: list[str]) -> None:
    """A previous owner's checkpoint of partition 0 at ``offset``, in the current log."""
    first = build(effects)
    await first.on_assigned([0])
    start = offset - len(outcomes)
    await first._handle(
        batch(0, start, [event(T0 + i, o).to_json() for i, o in enumerate(outcomes)])
    )
    await first.on_revoked([0])
    effects.log.clear()


def _resets(loop: EvaluatorConsumer, reason: str) -> float:
    value = loop.metrics.offset_resets.labels(TOPIC, reason)._value.get()
    return float(value)


async def test_a_checkpoint_of_another_log_resumes_at_the_log_start_keeping_the_state() -> None:
    """The embedded broker restarted empty: its new log has a new cluster id."""
    effects = Effects()
    await _stored_at(effects, 372, ["good", "bad"])
    effects.log_identity = LogIdentity("cluster-b", "topic-2")
    loop = build(effects)
    await loop.on_assigned([0])
    assert effects.log == [("seek_to_beginning", 0)]
    assert _resets(loop, "other_log") == 1
    # The new log's first events are counted on top of the restored state, not skipped.
    await loop._handle(batch(0, 0, [event(T0 + 10, "good").to_json()]))
    [status] = loop.engine.status("acme-checkout/availability")
    assert (status.status.good, status.status.valid) == (2, 3)
    await loop.on_revoked([0])
    assert effects.stored[0].next_offset == 1
    assert effects.stored[0].log == LogIdentity("cluster-b", "topic-2")
    assert effects.rebased == {0: 372}


async def test_an_offset_past_the_log_end_for_the_grace_resumes_at_the_log_start() -> None:
    effects = Effects()
    await _stored_at(effects, 372, ["good"])
    loop = build(effects)
    now = [DETECTED_AT]
    loop.clock = lambda: now[0]
    await loop.on_assigned([0])
    assert effects.log == [("seek", (0, 372))]
    effects.highwaters[0] = 6  # the first fetch tells the log end
    await loop._check_log_end(effects)  # type: ignore[arg-type]
    now[0] += SHORT_LOG_GRACE_MS - 1
    await loop._check_log_end(effects)  # type: ignore[arg-type]
    assert effects.log == [("seek", (0, 372))]  # a lagging watermark, perhaps
    now[0] += 1
    await loop._check_log_end(effects)  # type: ignore[arg-type]
    assert effects.log[-1] == ("seek_to_beginning", 0)
    assert _resets(loop, "beyond_log_end") == 1
    await loop._handle(batch(0, 0, [event(T0 + 10, "bad").to_json()]))
    [status] = loop.engine.status("acme-checkout/availability")
    assert (status.status.good, status.status.valid) == (1, 2)


async def test_a_watermark_that_catches_up_within_the_grace_keeps_the_offset() -> None:
    """Apache Kafka after a restart: the new leader's high watermark starts behind the
    log and moves up once its followers fetch."""
    effects = Effects()
    await _stored_at(effects, 372, ["good"])
    loop = build(effects)
    now = [DETECTED_AT]
    loop.clock = lambda: now[0]
    await loop.on_assigned([0])
    effects.highwaters[0] = 340
    await loop._check_log_end(effects)  # type: ignore[arg-type]
    now[0] += SHORT_LOG_GRACE_MS // 2
    effects.highwaters[0] = 380
    await loop._check_log_end(effects)  # type: ignore[arg-type]
    effects.highwaters[0] = 340  # a later short spell starts its own grace
    now[0] += SHORT_LOG_GRACE_MS - 1
    await loop._check_log_end(effects)  # type: ignore[arg-type]
    assert effects.log == [("seek", (0, 372))]
    assert _resets(loop, "beyond_log_end") == 0


async def test_an_offset_within_the_log_is_used() -> None:
    effects = Effects()
    await _stored_at(effects, 372, ["good"])
    loop = build(effects)
    await loop.on_assigned([0])
    effects.highwaters[0] = 372
    await loop._check_log_end(effects)  # type: ignore[arg-type]
    assert effects.log == [("seek", (0, 372))]
    assert _resets(loop, "beyond_log_end") == 0


async def test_a_checkpoint_without_an_identity_is_trusted() -> None:
    """Written before identities were recorded: only the log in use can have made it."""
    effects = Effects()
    await _stored_at(effects, 40, ["good"])
    effects.stored[0] = dataclasses.replace(effects.stored[0], log=None)
    effects.log_identity = LogIdentity("cluster-b", "topic-2")
    loop = build(effects)
    await loop.on_assigned([0])
    assert effects.log == [("seek", (0, 40))]


async def test_a_changed_cluster_under_a_running_consumer_resets_every_owned_partition() -> None:
    effects = Effects()
    loop = build(effects, checkpoint_interval_ms=3_600_000)
    await loop.on_assigned([0, 1])
    await loop._handle(batch(0, 0, [event(T0, "good").to_json()]))
    effects.log_identity = LogIdentity("cluster-b", "topic-2")
    loop._last_identity_check_at = -(10**12)  # due
    await loop._maybe_check_identity()
    assert sorted(e for e in effects.log if e[0] == "seek_to_beginning") == [
        ("seek_to_beginning", 0),
        ("seek_to_beginning", 1),
    ]
    assert _resets(loop, "other_log") == 2


async def test_a_checkpoint_postgresql_refuses_is_retried_with_its_rollups() -> None:
    """PostgreSQL down: the loop keeps evaluating; the next checkpoint that succeeds
    writes every rollup taken meanwhile, each once."""
    effects = Effects()
    loop = build(effects, checkpoint_every_events=1)
    await loop.on_assigned([0])
    effects.fail_save = True
    await loop._handle(batch(0, 0, [event(T0, "good").to_json()]))
    await loop._maybe_checkpoint()
    assert loop.checkpoints_failing
    effects.fail_save = False
    await loop._handle(batch(0, 1, [event(T0 + 1, "bad").to_json()]))
    loop._next_checkpoint_attempt_at = 0  # the backoff has passed
    await loop._maybe_checkpoint()
    assert not loop.checkpoints_failing
    assert [e for e in effects.log if e[0] == "save"] == [("save", {0: 2})]
    assert sum(r.valid for r in effects.rollups if isinstance(r, Rollup)) == 2


async def test_ready_only_once_the_group_assigned_partitions() -> None:
    """``/readyz`` stays 503 until the group has given this instance its share and it
    is restored; an empty share is a share. A failed restore is not ready."""
    effects = Effects()
    loop = build(effects)
    waiting = await loop.ready()
    assert (waiting.ok, waiting.reason) == (
        False,
        "waiting for the consumer group to assign partitions",
    )
    await loop.on_assigned([])
    assert (await loop.ready()).ok
    failing = Effects()
    failing.fail_load = True
    broken = build(failing)
    await broken.on_assigned([0])
    verdict = await broken.ready()
    assert not verdict.ok and "restoring or reloading failed" in (verdict.reason or "")


def _lag(loop: EvaluatorConsumer, partition: int) -> float | None:
    [metric] = loop.metrics.consumer_lag.collect()
    values = {s.labels["partition"]: s.value for s in metric.samples}
    return values.get(str(partition))


async def test_consumer_lag_per_owned_partition_and_forgotten_on_revoke() -> None:
    effects = Effects()
    loop = build(effects)
    await loop.on_assigned([0, 1])
    await loop._handle(batch(0, 0, [event(T0, "good").to_json(), event(T0 + 1, "good").to_json()]))
    effects.highwaters.update({0: 10, 1: 4})
    loop._record_lag(effects)  # type: ignore[arg-type]
    assert (_lag(loop, 0), _lag(loop, 1)) == (8, 4)  # 10 - next offset 2; 4 - 0
    await loop.on_revoked([1])
    assert _lag(loop, 1) is None
