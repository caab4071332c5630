"""The consume loop: events in, breach events and dead letters out, checkpoints.

Commit order, per batch (at-least-once input, exactly-once effect on state)::

    1. getmany()                      records of the owned partitions
    2. engine.process(record)         pure, in memory, per record; late and malformed
                                      records become dead letters
    3. producer.send(...) for every breach event and dead letter, then AWAIT all acks
    4. every checkpoint_every_events events or checkpoint_interval_ms:
       PostgreSQL: state snapshot + next offset of each changed partition, ONE transaction
    5. Kafka: commit the same offsets (advisory; a failed commit is only logged)

A crash before 4 replays from the previous checkpoint: the replay republishes the
same breach events with the same ids (deterministic in event time), and counts each
event once, since the restored state never includes the replayed records. A crash
between 4 and 5 is harmless: on assignment the PostgreSQL offset wins (we seek to it).

Rebalancing (:class:`_Rebalance`): on revoke, checkpoint the revoked partitions (and
commit) and drop their state; on assign, restore state from PostgreSQL and seek to
the stored offset. The loop and the listener share one lock, so a rebalance never
sees half a batch; records of a partition lost meanwhile are skipped. A failure to
restore is fatal (processing without state would count wrong); it is raised from the
loop, since aiokafka swallows listener errors.

Hot reload (:meth:`EvaluatorConsumer.reload`, under the same lock): checkpoint every
owned partition, so the per-minute rollups counted so far are in PostgreSQL; read the
rollups of the objectives whose windows are rebuilt (:mod:`.rebuild`); switch the
engine to the new objectives.

Idle tick: every ``idle_tick_ms`` of wall time, event time is let pass to each
partition's watermark (see :meth:`Engine.tick`) and the gauges are refreshed. Nothing
slow runs per record: produce acks, checkpoints and commits are per batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy.exc import SQLAlchemyError

from services.evaluator.checkpoint import CheckpointStore, StoredCheckpoint
from services.evaluator.engine import Engine, Rollup
from services.evaluator.exceptions import EvaluatorError
from services.evaluator.fastevent import InvalidEvent, decode
from services.evaluator.metrics import EvaluatorMetrics
from services.evaluator.objectives.base import CompiledObjective
from shared import kafka
from shared.deadletter import DeadLetter
from shared.logid import (
    LogIdentity,
    ResetReason,
    ShortLogJudge,
    decide_identity,
    fetch_identities,
)
from shared.readiness import CheckResult
from shared.reconnect import describe
from shared.schemas import Breach, group_key
from shared.settings import Settings
from shared.timeutil import Clock
from shared.topics import Topics

log = logging.getLogger(__name__)

MAX_BATCH_RECORDS = 2_000
METRICS_REFRESH_MS = 5_000
#: Share of ``shutdown_grace_s`` spent reading to the end of the log on stop; the rest
#: is for the final checkpoint and leaving the group.
DRAIN_SHARE = 0.6
#: Retry delays of a checkpoint PostgreSQL did not take (doubling up to the cap).
CHECKPOINT_RETRY_MS = (500, 10_000)
#: Retry delays of a restore that met an outage (doubling up to the cap).
RESTORE_RETRY_MS = (250, 5_000)
#: The cluster identity is checked this often, so a broker that restarted empty under
#: a running consumer is noticed even without a rebalance.
IDENTITY_CHECK_MS = 2_000

#: Errors of a checkpoint that a later attempt may not meet (PostgreSQL stopped,
#: restarting, unreachable). A checkpoint is one transaction: retrying it is safe.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (SQLAlchemyError, OSError, TimeoutError)


def consumer_group(settings: Settings) -> str:
    """The evaluator's consumer group: ``"<prefix>-evaluator"``."""
    return f"{settings.topic_prefix}-evaluator"


def breach_key(breach: Breach) -> bytes:
    """Kafka key of a breach event: objective id and group, so a group stays ordered."""
    return f"{breach.objective_id}|{group_key(breach.group)}".encode()


class EvaluatorConsumer:
    """Runs the consume loop of one evaluator instance (see the module docstring)."""

    def __init__(
        self,
        settings: Settings,
        engine: Engine,
        store: CheckpointStore,
        producer: AIOKafkaProducer,
        metrics: EvaluatorMetrics,
        clock: Clock,
        identify: Callable[[], Awaitable[LogIdentity | None]] | None = None,
    ) -> None:
        self.settings = settings
        self._identify = identify or self._current_log
        self.topics = Topics.from_settings(settings)
        self.group_id = consumer_group(settings)
        self.engine = engine
        self.store = store
        self.producer = producer
        self.metrics = metrics
        self.clock = clock
        self._lock = asyncio.Lock()
        self._consumer: AIOKafkaConsumer | None = None
        self._next_offsets: dict[int, int] = {}
        self._dirty: set[int] = set()
        self._since_checkpoint = 0
        self._records_seen = 0  # records of owned partitions read, ever
        self._last_checkpoint_at = clock()
        self._last_tick_at = clock()
        self._last_refresh_at = clock()
        self._fatal: BaseException | None = None
        self._active: set[int] = set()  # partitions that received records since the tick
        self._log: LogIdentity | None = None  # the log the offsets in hand belong to
        self._last_identity_check_at = clock()
        # partition -> its offset in the previous log, until a checkpoint in the new one
        self._rebased: dict[int, int] = {}
        self._short_log = ShortLogJudge()
        # rollups taken for a checkpoint PostgreSQL did not take, written with the next
        self._unsaved_rollups: dict[int, list[Rollup]] = {}
        self._checkpoint_failing_since: int | None = None
        self._checkpoint_retry_ms = CHECKPOINT_RETRY_MS[0]
        self._next_checkpoint_attempt_at = 0
        self._assigned_once = False  # the group has given this instance its share

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set, then checkpoint, commit and leave the group."""
        consumer = kafka.consumer(self.settings, group_id=self.group_id)
        consumer.subscribe(topics=[self.topics.events], listener=_Rebalance(self))
        self._consumer = consumer
        await consumer.start()
        try:
            while not stop.is_set():
                await self._poll_once(consumer)
            await self._drain(consumer)
            if self._fatal is not None:
                # No final checkpoint: the state may lack what the failure lost (rollups
                # taken, resolutions unpublished); the next run replays from the last one.
                raise EvaluatorError("restoring or reloading failed") from self._fatal
            async with self._lock:
                await self._checkpoint(self.engine.partitions)
            log.info(
                "evaluator consumer stopped cleanly", extra={"partitions": self.engine.partitions}
            )
        finally:
            self._consumer = None
            await consumer.stop()

    async def _poll_once(self, consumer: AIOKafkaConsumer) -> None:
        batch = await consumer.getmany(
            timeout_ms=self.settings.idle_tick_ms, max_records=MAX_BATCH_RECORDS
        )
        if self._fatal is not None:
            raise EvaluatorError("restoring or reloading failed") from self._fatal
        async with self._lock:
            await self._check_log_end(consumer)
            await self._handle(batch)
            self._record_lag(consumer)
            await self._maybe_tick()
            await self._maybe_check_identity()
            await self._maybe_checkpoint()

    async def _drain(self, consumer: AIOKafkaConsumer) -> None:
        """On stop: read on until every owned partition is at its log end (what ingest
        acknowledged before it stopped), within a share of the shutdown grace."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self.settings.shutdown_grace_s * DRAIN_SHARE
        while self._fatal is None and loop.time() < deadline:
            # Only a poll that found nothing proves the high watermarks are recent: one
            # fetched before the stop may predate what ingest acknowledged last.
            before = self._records_seen
            await self._poll_once(consumer)
            if self._records_seen == before and not self._behind(consumer):
                return
        if self._fatal is None and (behind := self._behind(consumer)):
            log.warning(
                "stopping before the end of the log; the next owner reads the rest",
                extra={"partitions": behind},
            )

    def _behind(self, consumer: AIOKafkaConsumer) -> list[int]:
        """Owned partitions not known to be at their log end (high watermark)."""
        out = []
        for p in self.engine.partitions:
            highwater = consumer.highwater(TopicPartition(self.topics.events, p))
            if highwater is None or self._next_offsets.get(p, 0) < highwater:
                out.append(p)
        return out

    def _record_lag(self, consumer: AIOKafkaConsumer) -> None:
        """Records between the offset in hand and the log end, per owned partition."""
        for p in self.engine.partitions:
            highwater = consumer.highwater(TopicPartition(self.topics.events, p))
            if highwater is not None:
                lag = max(0, highwater - self._next_offsets.get(p, 0))
                self.metrics.consumer_lag.labels(str(p)).set(lag)

    async def ready(self) -> CheckResult:
        """``/readyz``: ready once the group assigned this instance its partitions (none
        is a valid share) and they were restored; not while a restore failed or while
        PostgreSQL refuses checkpoints."""
        if self._fatal is not None:
            return CheckResult(False, f"restoring or reloading failed: {describe(self._fatal)}")
        if not self._assigned_once:
            return CheckResult(False, "waiting for the consumer group to assign partitions")
        if self.checkpoints_failing:
            return CheckResult(False, "checkpoints are failing")
        return CheckResult(True)

    async def _check_log_end(self, consumer: AIOKafkaConsumer) -> None:
        """An offset in hand past the partition's log end for longer than the grace
        (shared.logid.ShortLogJudge) belongs to another log (a broker that restarted
        empty): resume at the log start, keeping the state."""
        moved = False
        now = self.clock()
        for p, next_offset in list(self._next_offsets.items()):
            highwater = consumer.highwater(TopicPartition(self.topics.events, p))
            if highwater is not None and self._short_log.observe(p, next_offset, highwater, now):
                await self._reset(p, next_offset, ResetReason.BEYOND_LOG_END, log_end=highwater)
                moved = True
        if moved:  # checkpoints from now on belong to the log in hand
            self._log = await self._identify() or self._log

    async def _reset(
        self, partition: int, stored: int, reason: ResetReason, *, log_end: int | None = None
    ) -> None:
        """Resume ``partition`` at the log start, keeping its state (the new log holds new
        events; one read twice is a duplicate by id within the dedup horizon)."""
        log.warning(
            "stored offset not used: %s; resuming at the log start with the state kept",
            reason.value,
            extra={
                "topic": self.topics.events,
                "partition": partition,
                "stored_offset": stored,
                "log_end": log_end,
                "reason": reason.value,
            },
        )
        self.metrics.offset_resets.labels(self.topics.events, reason.value).inc()
        self._rebased.setdefault(partition, stored)
        self._short_log.forget(partition)
        # The state in hand is the new log's at its start: a checkpoint now stands.
        self._next_offsets[partition] = 0
        self._dirty.add(partition)
        if self._consumer is not None:
            await self._consumer.seek_to_beginning(TopicPartition(self.topics.events, partition))

    async def _current_log(self) -> LogIdentity | None:
        """The events topic's log identity now, None if the broker cannot tell."""
        if self._consumer is None:
            return None
        try:
            # aiokafka's consumer keeps its broker client private; the identity request
            # must go over the same cluster connection.
            client = self._consumer._client
            found = await asyncio.wait_for(fetch_identities(client, [self.topics.events]), 5)
        except (KafkaError, OSError, TimeoutError) as exc:
            log.warning("broker identity unavailable", extra={"error": repr(exc)})
            return None
        return found[self.topics.events]

    async def _maybe_check_identity(self) -> None:
        now = self.clock()
        if now - self._last_identity_check_at < IDENTITY_CHECK_MS or self._log is None:
            return
        self._last_identity_check_at = now
        current = await self._identify()
        if current is None or decide_identity(self._log, current) is None:
            return
        self._log = current
        for p in self.engine.partitions:
            await self._reset(p, self._next_offsets.get(p, 0), ResetReason.OTHER_LOG)

    async def _handle(self, batch: dict[Any, list[Any]]) -> None:
        """Evaluate a batch; the per-record loop is the hot path, kept flat on purpose."""
        breaches: list[Breach] = []
        letters: list[DeadLetter] = []
        evaluated = duplicates = late = future = seen = 0
        process = self.engine.process
        for tp, records in batch.items():
            partition: int = tp.partition
            if not self.engine.owns(partition):
                continue
            expected = self._next_offsets.get(partition)
            if records:
                self._active.add(partition)
            for record in records:
                offset = record.offset
                if expected is not None and offset < expected:
                    continue
                expected = offset + 1
                seen += 1
                raw: bytes = record.value or b""
                try:
                    event = decode(raw)
                except InvalidEvent as exc:
                    detail = str(exc.errors[:3])[:1000]
                    letters.append(self._letter("invalid", raw, record, detail=detail))
                    continue
                result = process(partition, event)
                if result.future_by_ms is not None:
                    future += 1
                    detail = f"time {result.future_by_ms} ms past now + the allowed future skew"
                    letters.append(self._letter("future", raw, record, detail=detail))
                    continue
                if result.late_by_ms is not None:
                    late += 1
                    detail = f"late by {result.late_by_ms} ms"
                    letters.append(self._letter("late", raw, record, detail=detail))
                    continue
                evaluated += 1
                if result.duplicate:
                    duplicates += 1
                elif result.breaches:
                    breaches.extend(result.breaches)
            if expected is not None:
                self._next_offsets[partition] = expected
                self._dirty.add(partition)
        self._since_checkpoint += seen
        self._records_seen += seen
        self.metrics.events_evaluated.inc(evaluated)
        if duplicates:
            self.metrics.duplicates.inc(duplicates)
        if late:
            self.metrics.late_events.inc(late)
        if future:
            self.metrics.future_events.inc(future)
        await self._publish(breaches, letters)

    def _letter(self, reason: str, raw: bytes, record: Any, *, detail: str) -> DeadLetter:
        self.metrics.deadletters.labels(reason).inc()
        return DeadLetter.of(
            "evaluator",
            reason,
            raw,
            at=self.clock(),
            detail=detail,
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
        )

    async def _publish(self, breaches: list[Breach], letters: list[DeadLetter]) -> None:
        """Send everything, then wait for every acknowledgement."""
        if not breaches and not letters:
            return
        pending = [
            await self.producer.send(self.topics.breaches, b.to_json(), key=breach_key(b))
            for b in breaches
        ]
        pending += [
            await self.producer.send(self.topics.deadletter, d.to_json(), key=d.key)
            for d in letters
        ]
        await asyncio.gather(*pending)
        published_at = self.clock()
        for breach in breaches:
            if breach.kind == "breach.opened":
                self.metrics.breaches_opened.labels(breach.objective_id).inc()
            if breach.trigger_received_at is not None:
                latency_ms = max(0, published_at - breach.trigger_received_at)
                self.metrics.detection_latency.observe(latency_ms / 1000)
        if breaches:
            log.info("breach events published", extra={"count": len(breaches)})

    async def _maybe_tick(self) -> None:
        now = self.clock()
        if now - self._last_tick_at < self.settings.idle_tick_ms:
            return
        self._last_tick_at = now
        breaches: list[Breach] = []
        for partition in self.engine.partitions:
            # Nothing unread (idle, or read to the log end): the wall clock may move
            # its services' clocks. Caught up counts too, so one busy service does not
            # hold back the timers of the quiet ones beside it (see Engine.tick).
            idle = partition not in self._active or self._caught_up(partition)
            before = self.engine.clocks(partition)
            breaches.extend(self.engine.tick(partition, now if idle else None))
            if self.engine.clocks(partition) != before:
                self._dirty.add(partition)  # moved by the wall clock: state changed
        self._active.clear()
        await self._publish(breaches, [])
        for objective_id, folded in self.engine.take_overflow().items():
            self.metrics.group_overflow.labels(objective_id).inc(folded)
        refused = self.metrics.count_refused(self.engine)
        if refused:  # once per tick, not per event: a flood of starts must not flood logs
            log.warning("deadline starts refused at the entity cap", extra={"refused": refused})
        if now - self._last_refresh_at >= METRICS_REFRESH_MS:
            # Walking every objective's status costs ~0.1 s per 2,000 objectives: not on
            # every tick.
            self._last_refresh_at = now
            self.metrics.refresh(self.engine)

    def _caught_up(self, partition: int) -> bool:
        """Whether every record of ``partition`` up to its last known log end is read."""
        if self._consumer is None or partition not in self._next_offsets:
            return False
        highwater = self._consumer.highwater(TopicPartition(self.topics.events, partition))
        return highwater is not None and self._next_offsets[partition] >= highwater

    async def _maybe_checkpoint(self) -> None:
        due_by_count = self._since_checkpoint >= self.settings.checkpoint_every_events
        due_by_time = (
            self.clock() - self._last_checkpoint_at >= self.settings.checkpoint_interval_ms
        )
        retry_wait = self.clock() < self._next_checkpoint_attempt_at
        if self._dirty and (due_by_count or due_by_time) and not retry_wait:
            try:
                await self._checkpoint(sorted(self._dirty))
            except TRANSIENT_DB_ERRORS as exc:
                self._checkpoint_failed(exc)

    async def _checkpoint(self, partitions: list[int]) -> None:
        """PostgreSQL first (state + offset, one transaction), then the Kafka commit."""
        saved = {
            p: StoredCheckpoint(self.engine.snapshot(p), self._next_offsets[p], self._log)
            for p in partitions
            if self.engine.owns(p) and p in self._next_offsets
        }
        if saved:
            for p in saved:
                self._unsaved_rollups.setdefault(p, []).extend(self.engine.take_rollups(p))
            rollups = [r for p in saved for r in self._unsaved_rollups[p]]
            dedup = {p: self.engine.dedup_delta(p) for p in saved}
            rebased = {p: self._rebased[p] for p in saved if p in self._rebased}
            await self.store.save(saved, rollups, dedup, rebased)
            for p in saved:
                self._unsaved_rollups.pop(p, None)
                self._rebased.pop(p, None)
            for delta in dedup.values():
                delta.stored()
            self.metrics.checkpoints.inc()
            self._checkpoint_recovered()
            await self._commit({p: cp.next_offset for p, cp in saved.items()})
        self._dirty.difference_update(partitions)
        self._since_checkpoint = 0
        self._last_checkpoint_at = self.clock()

    def _checkpoint_failed(self, exc: BaseException) -> None:
        """Keep consuming with the state in memory; retry with backoff. Breach events go
        on being published; after a crash meanwhile, the replay republishes them with
        the same ids."""
        self.metrics.checkpoint_failures.inc()
        now = self.clock()
        if self._checkpoint_failing_since is None:
            self._checkpoint_failing_since = now
            log.warning(
                "checkpoint failed; PostgreSQL unavailable? retrying with backoff",
                extra={"error": repr(exc)},
            )
        self._next_checkpoint_attempt_at = now + self._checkpoint_retry_ms
        self._checkpoint_retry_ms = min(self._checkpoint_retry_ms * 2, CHECKPOINT_RETRY_MS[1])

    def _checkpoint_recovered(self) -> None:
        if self._checkpoint_failing_since is not None:
            log.info(
                "checkpoints written again",
                extra={"failing_ms": self.clock() - self._checkpoint_failing_since},
            )
        self._checkpoint_failing_since = None
        self._checkpoint_retry_ms = CHECKPOINT_RETRY_MS[0]
        self._next_checkpoint_attempt_at = 0

    @property
    def checkpoints_failing(self) -> bool:
        """True while PostgreSQL does not take checkpoints (readiness)."""
        return self._checkpoint_failing_since is not None

    async def _commit(self, offsets: dict[int, int]) -> None:
        if self._consumer is None:
            return
        try:
            await self._consumer.commit(
                {TopicPartition(self.topics.events, p): o for p, o in offsets.items()}
            )
        except KafkaError as exc:
            log.warning(
                "kafka commit failed; PostgreSQL checkpoint stands", extra={"error": repr(exc)}
            )

    async def reload(self, objectives: list[CompiledObjective]) -> dict[str, str]:
        """Hot reload between two batches (the loop's lock): see :meth:`Engine.reload`.

        First a checkpoint of every owned partition, so the rollups counted so far are
        in PostgreSQL (each event in exactly one row, none lost with a replaced shard);
        then the rollups of the objectives to rebuild are read and handed to the engine.
        Breaches the reload withdrew are resolved (published) before the next batch.
        """
        async with self._lock:
            if self._fatal is not None:
                raise EvaluatorError("the consumer has failed; not reloading") from self._fatal
            try:
                await self._checkpoint(self.engine.partitions)
                history = await self._rebuild_history(objectives)
                changes = self.engine.reload(objectives, history)
                await self._publish_resolutions("a reload withdrew their rule")
                # The reloaded state stands at once: a restore from the checkpoint before
                # would apply the same plan again (see state.decode), at worst publishing
                # the resolutions twice, with the same ids.
                await self._checkpoint(self.engine.partitions)
            except Exception as exc:
                # What was taken for the failed step (rollups, resolutions) is not in
                # PostgreSQL: stop without another checkpoint and replay (see run).
                self._fatal = exc
                raise
            self.metrics.refresh(self.engine)
        log.info("objectives reloaded", extra={"changes": changes})
        return changes

    async def _rebuild_history(
        self, objectives: list[CompiledObjective]
    ) -> dict[str, list[Rollup]]:
        """The rollups the engine rebuilds changed windows from; none (they restart
        empty) if reading them fails, since a reload must not be lost to it."""
        requests = self.engine.rebuild_requests(objectives)
        if not requests:
            return {}
        try:
            return await self.store.load_rollups(requests)
        except Exception:
            log.exception(
                "reading rollups for a rebuild failed; the changed objectives restart empty",
                extra={"objectives": [r.objective_id for r in requests]},
            )
            return {}

    async def _publish_resolutions(self, why: str) -> None:
        withdrawn = self.engine.take_resolutions()
        if withdrawn:
            log.info(
                "resolving breaches", extra={"why": why, "breaches": [b.id for b in withdrawn]}
            )
            await self._publish(withdrawn, [])

    async def on_revoked(self, partitions: list[int]) -> None:
        """Checkpoint and drop the partitions this instance loses."""
        async with self._lock:
            owned = [p for p in partitions if self.engine.owns(p)]
            try:
                if self._fatal is None:
                    await self._checkpoint(owned)
            except Exception:
                # The next owner replays from the previous checkpoint: same result.
                log.exception("checkpoint on revoke failed", extra={"partitions": owned})
            for p in owned:
                self.engine.revoke(p)
                self._next_offsets.pop(p, None)
                self._dirty.discard(p)
                # The next owner replays from the stored checkpoint and counts these again.
                self._unsaved_rollups.pop(p, None)
                self._rebased.pop(p, None)
                self.metrics.forget_partition(p)
            self.metrics.refresh(self.engine)

    async def _restore_inputs(
        self, fresh: list[int]
    ) -> tuple[LogIdentity, dict[int, StoredCheckpoint]]:
        """The log in hand and the stored checkpoints of ``fresh``, waiting out an
        outage of the broker or PostgreSQL with backoff (processing without the state
        would count wrong; the rebalance simply waits)."""
        delay_ms, outage_since = RESTORE_RETRY_MS[0], None
        while True:
            current = await self._identify()
            if current is not None:
                try:
                    stored = await self.store.load(fresh)
                except TRANSIENT_DB_ERRORS as exc:
                    problem = f"PostgreSQL: {exc!r}"
                else:
                    if outage_since is not None:
                        log.info("partitions restored after an outage", extra={"partitions": fresh})
                    return current, stored
            else:
                problem = "the broker did not tell which log it holds"
            if outage_since is None:
                outage_since = self.clock()
                log.warning(
                    "cannot restore partitions yet; retrying with backoff",
                    extra={"partitions": fresh, "problem": problem},
                )
            await asyncio.sleep(delay_ms / 1000)
            delay_ms = min(delay_ms * 2, RESTORE_RETRY_MS[1])

    async def on_assigned(self, partitions: list[int]) -> None:
        """Restore state from PostgreSQL and seek to the stored offsets."""
        async with self._lock:
            fresh = [p for p in partitions if not self.engine.owns(p)]
            try:
                current, stored = await self._restore_inputs(fresh)
                self._log = current
                for p in fresh:
                    checkpoint = stored.get(p)
                    if checkpoint is None:
                        self.engine.assign(p, None)
                        continue
                    self.engine.assign(p, checkpoint.state, checkpoint.dedup)
                    self._dirty.add(p)  # restored under today's definitions: keep that
                    reason = decide_identity(checkpoint.log, current)
                    if reason is not None:
                        await self._reset(p, checkpoint.next_offset, reason)
                        continue
                    self._next_offsets[p] = checkpoint.next_offset
                    if self._consumer is not None:
                        self._consumer.seek(
                            TopicPartition(self.topics.events, p), checkpoint.next_offset
                        )
                await self._publish_resolutions("their rule changed while the state was stored")
            except Exception as exc:
                log.exception("restoring partitions failed", extra={"partitions": fresh})
                for p in fresh:
                    self.engine.revoke(p)
                self._fatal = exc
                return
            self._assigned_once = True
            log.info("partitions assigned", extra={"partitions": sorted(partitions)})
            self.metrics.refresh(self.engine)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    """Forwards aiokafka's rebalance callbacks for the events topic."""

    def __init__(self, owner: EvaluatorConsumer) -> None:
        self.owner = owner

    async def on_partitions_revoked(self, revoked: Any) -> None:
        topic = self.owner.topics.events
        await self.owner.on_revoked(sorted(tp.partition for tp in revoked if tp.topic == topic))

    async def on_partitions_assigned(self, assigned: Any) -> None:
        topic = self.owner.topics.events
        await self.owner.on_assigned(sorted(tp.partition for tp in assigned if tp.topic == topic))
