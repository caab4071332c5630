"""Source runners: one consumer group per ``Source`` definition, mapping its records
into canonical events.

Per polled batch, in this order (at-least-once, like the raw path):

1. map every record (``services.ingest.mapping``): an event for the events topic,
   or a dead letter on ``<prefix>.deadletter`` keyed ``source/<name>`` with the
   first error's reason, every error in the detail (prefixed with the source name),
   the record's topic/partition/offset and its original bytes;
2. produce all outputs and await every acknowledgement (retrying the
   unacknowledged ones); if some still fail, raise :class:`PublishError` without
   committing (the service stops; on restart the batch is consumed again);
3. commit the next offsets of the batch (only of partitions still assigned).

The consumer group is ``<prefix>-source-<name>``, so a source whose mapping changes
resumes where it was. Pausing keeps the group membership (the consumer keeps
polling, with every assigned partition paused) so a pause does not rebalance.

Lag per source = Σ over assigned partitions of (high watermark - next offset to
process), from the high watermark the last fetch reported
(``AIOKafkaConsumer.highwater``); while paused, partitions are not fetched, so the log
end is asked for instead (``end_offsets``) and the lag keeps growing. On the embedded
test broker these figures are not exact (its offsets are wrong when a batch holds
several records): the lag arithmetic is tested against a fake consumer, and exactly
on Apache Kafka (tests/integration/ingest/test_source_lag.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from aiokafka import TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError
from prometheus_client import CollectorRegistry, Counter, Gauge

from services.ingest.exceptions import PublishError
from services.ingest.mapping import (
    MAPPING_REASONS,
    MappingError,
    MappingReason,
    SourceRecord,
    compile_mapping,
    map_record,
)
from services.ingest.mapping import Mapping as CompiledMapping
from services.ingest.normalize import DEFAULT_MAX_FUTURE_SKEW_MS
from services.ingest.publisher import Publisher, send_with_retries
from services.ingest.records import MAX_DETAIL_CHARS, MAX_ORIGINAL_BYTES, OutRecord, event_record
from shared.deadletter import DeadLetter
from shared.definitions.kinds.source import SourceSpec
from shared.kafka import FinishBatchOnRevoke
from shared.logid import LogEndWatch, offset_resets
from shared.schemas import Event
from shared.timeutil import Clock
from shared.topics import Topics

log = logging.getLogger(__name__)


def group_id(topic_prefix: str, name: str) -> str:
    """The consumer group of one source."""
    return f"{topic_prefix}-source-{name}"


def deadletter_key(name: str) -> bytes:
    return f"source/{name}".encode()


class SourceMetrics:
    """``slawatch_source_records_total``, ``slawatch_source_events_total``,
    ``slawatch_source_rejected_total{reason}``, ``slawatch_source_lag``,
    ``slawatch_source_paused``; label ``source`` is the Source name (bounded by the
    number of definitions), ``reason`` one of ``MAPPING_REASONS``."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.offset_resets = offset_resets(registry)
        self.records = Counter(
            "slawatch_source_records",
            "Records consumed from source topics.",
            ["source"],
            registry=registry,
        )
        self.events = Counter(
            "slawatch_source_events",
            "Events produced from source records (acknowledged).",
            ["source"],
            registry=registry,
        )
        self.rejected = Counter(
            "slawatch_source_rejected",
            "Source records dead-lettered, by the reason of their first error.",
            ["source", "reason"],
            registry=registry,
        )
        self.lag = Gauge(
            "slawatch_source_lag",
            "Records on the source topics not yet processed (from fetch high watermarks).",
            ["source"],
            registry=registry,
        )
        self.paused = Gauge(
            "slawatch_source_paused", "1 while the source is paused.", ["source"], registry=registry
        )

    def register(self, name: str) -> None:
        self.records.labels(name)
        self.events.labels(name)
        self.lag.labels(name)
        self.paused.labels(name)
        for reason in MAPPING_REASONS:
            self.rejected.labels(name, reason)


@dataclass(frozen=True)
class Mapped:
    """Where one source record goes; ``reason`` set when it is dead-lettered."""

    out: OutRecord
    reason: MappingReason | None


def route_source_record(
    name: str,
    mapping: CompiledMapping,
    record: SourceRecord,
    topics: Topics,
    received_at: int,
    *,
    max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
) -> Mapped:
    """Map one record; a failure becomes a dead letter with every error."""
    outcome = map_record(mapping, record, received_at, max_future_skew_ms=max_future_skew_ms)
    if isinstance(outcome, Event):
        return Mapped(event_record(outcome, topics), None)
    return Mapped(deadletter(name, outcome, record, topics, received_at), outcome[0].reason)


def deadletter(
    name: str,
    errors: Sequence[MappingError],
    record: SourceRecord,
    topics: Topics,
    received_at: int,
) -> OutRecord:
    original = record.value or b""
    detail = f"source {name}: " + "; ".join(e.describe() for e in errors)
    if len(detail) > MAX_DETAIL_CHARS:
        detail = detail[: MAX_DETAIL_CHARS - 1] + "…"
    if len(original) > MAX_ORIGINAL_BYTES:
        detail += f" [original cut to its first {MAX_ORIGINAL_BYTES} of {len(original)} bytes]"
        original = original[:MAX_ORIGINAL_BYTES]
    letter = DeadLetter.of(
        "ingest.source",
        errors[0].reason,
        original,
        at=received_at,
        detail=detail,
        topic=record.topic,
        partition=record.partition,
        offset=record.offset,
    )
    return OutRecord(topics.deadletter, deadletter_key(name), letter.to_json())


def lag_of(
    highwaters: Mapping[TopicPartition, int | None], next_offsets: Mapping[TopicPartition, int]
) -> int | None:
    """Σ (high watermark - next offset) over partitions with both known; None if none."""
    total: int | None = None
    for tp, high in highwaters.items():
        position = next_offsets.get(tp)
        if high is None or position is None:
            continue
        total = (total or 0) + max(0, high - position)
    return total


class SourceConsumer(Protocol):
    """The part of ``AIOKafkaConsumer`` a runner uses (a fake in tests)."""

    def subscribe(self, topics: list[str], listener: Any) -> None: ...
    async def start(self) -> None: ...
    async def stop(self) -> None: ...
    async def getmany(self, *, timeout_ms: int, max_records: int) -> dict[TopicPartition, Any]: ...
    def assignment(self) -> set[TopicPartition]: ...
    def pause(self, *partitions: TopicPartition) -> None: ...
    def resume(self, *partitions: TopicPartition) -> None: ...
    def highwater(self, partition: TopicPartition) -> int | None: ...
    async def seek_to_beginning(self, *partitions: TopicPartition) -> bool: ...
    async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]: ...
    async def commit(self, offsets: dict[TopicPartition, int]) -> None: ...


class SourceRunner:
    """Consumes one source until ``stop`` is set; owns its consumer's start and stop."""

    def __init__(
        self,
        name: str,
        spec: SourceSpec,
        consumer: SourceConsumer,
        publisher: Publisher,
        topics: Topics,
        metrics: SourceMetrics,
        clock: Clock,
        *,
        max_records: int = 5_000,
        poll_timeout_ms: int = 200,
        publish_attempts: int = 3,
        retry_backoff_s: float = 0.2,
        max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
    ) -> None:
        self.name = name
        self.spec = spec
        self._mapping = compile_mapping(spec)
        self._consumer = consumer
        self._publisher = publisher
        self._topics = topics
        self._metrics = metrics
        self._clock = clock
        self._max_records = max_records
        self._poll_timeout_ms = poll_timeout_ms
        self._publish_attempts = publish_attempts
        self._retry_backoff_s = retry_backoff_s
        self._max_future_skew_ms = max_future_skew_ms
        self._lock = asyncio.Lock()
        self._next: dict[TopicPartition, int] = {}
        self._paused_ends: dict[TopicPartition, int] = {}
        self._log_end = LogEndWatch(metrics.offset_resets, f"source {name}")
        self.paused = False
        self.lag: int | None = None
        metrics.register(name)

    def set_paused(self, paused: bool) -> None:
        """Pauses the assigned partitions at once (a poll in progress returns nothing
        more from them); partitions assigned later are paused by the loop."""
        self.paused = paused
        self._metrics.paused.labels(self.name).set(1 if paused else 0)
        assigned = self._consumer.assignment()
        if paused:
            self._consumer.pause(*assigned)
        else:
            self._consumer.resume(*assigned)

    async def run(self, stop: asyncio.Event) -> None:
        self._consumer.subscribe(list(self.spec.topics), listener=FinishBatchOnRevoke(self._lock))
        await self._consumer.start()
        try:
            while not stop.is_set():
                assigned = self._consumer.assignment()
                if self.paused:
                    self._consumer.pause(*assigned)
                else:
                    self._consumer.resume(*assigned)
                batch = await self._consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._max_records
                )
                async with self._lock:
                    if batch:  # records fetched before a pause are processed, never skipped
                        await self._handle(batch)
                        self._log_end.advance(batch)
                    await self._log_end.check(self._consumer)
                await self._refresh_paused_ends(assigned)
                self.update_lag()
        finally:
            await self._consumer.stop()

    async def _refresh_paused_ends(self, assigned: set[TopicPartition]) -> None:
        """Paused partitions are not fetched, so their high watermark stands still: ask
        the broker for the log end instead, so the lag of a paused source grows."""
        if not (self.paused and assigned):
            self._paused_ends = {}
            return
        # broker unreachable: the gauge keeps its last figure until it answers
        with contextlib.suppress(KafkaError):
            self._paused_ends = await self._consumer.end_offsets(list(assigned))

    def update_lag(self) -> None:
        assigned = self._consumer.assignment()
        highwaters = {
            tp: self._paused_ends.get(tp, self._consumer.highwater(tp)) for tp in assigned
        }
        self.lag = lag_of(highwaters, self._next)
        if self.lag is not None:
            self._metrics.lag.labels(self.name).set(self.lag)

    async def _handle(self, batch: dict[TopicPartition, list[Any]]) -> None:
        received_at = self._clock()
        records = [
            SourceRecord(r.topic, r.partition, r.offset, r.timestamp, r.value)
            for messages in batch.values()
            for r in messages
        ]
        mapped = [
            route_source_record(
                self.name,
                self._mapping,
                rec,
                self._topics,
                received_at,
                max_future_skew_ms=self._max_future_skew_ms,
            )
            for rec in records
        ]
        self._metrics.records.labels(self.name).inc(len(records))
        outcomes = await send_with_retries(
            self._publisher,
            [m.out for m in mapped],
            attempts=self._publish_attempts,
            backoff_s=self._retry_backoff_s,
        )
        failed = [error for error in outcomes if error is not None]
        if failed:
            raise PublishError(
                f"source {self.name}: {len(failed)} records not acknowledged: {failed[0]}"
            )
        events = 0
        for m in mapped:
            if m.reason is None:
                events += 1
            else:
                self._metrics.rejected.labels(self.name, m.reason).inc()
        self._metrics.events.labels(self.name).inc(events)
        await self._commit(batch)

    async def _commit(self, batch: dict[TopicPartition, list[Any]]) -> None:
        assigned = self._consumer.assignment()
        offsets = {tp: msgs[-1].offset + 1 for tp, msgs in batch.items() if tp in assigned}
        self._next.update(offsets)
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            log.warning("source %s: batch produced but not committed; it will be redone", self.name)


RunnerFactory = Callable[[str, SourceSpec], SourceRunner]


@dataclass
class _Running:
    runner: SourceRunner
    stop: asyncio.Event
    task: asyncio.Task[None]


class SourceManager:
    """Keeps one runner per source definition; applies catalog changes; pause/resume.

    Pause state is per process and survives a definition change (not a restart).
    A runner that fails fails the manager's :meth:`run`, and so the service.
    """

    def __init__(
        self,
        factory: RunnerFactory,
        *,
        stop_grace_s: float = 5.0,
        forbidden_topics: frozenset[str] = frozenset(),
    ) -> None:
        self._factory = factory
        self._stop_grace_s = stop_grace_s
        #: slawatch's own output topics: a Source reading them would feed itself
        self._forbidden = forbidden_topics
        self.refused: dict[str, str] = {}
        self._running: dict[str, _Running] = {}
        self._paused: set[str] = set()
        self._failed = asyncio.Event()
        self.failure: BaseException | None = None

    @property
    def names(self) -> list[str]:
        return sorted(self._running)

    def runner(self, name: str) -> SourceRunner | None:
        running = self._running.get(name)
        return running.runner if running else None

    async def apply(self, sources: Mapping[str, SourceSpec]) -> None:
        """Start new sources, restart changed ones, stop removed ones. A source that
        reads one of slawatch's own output topics is refused (logged, listed)."""
        self.refused = {}
        for name, spec in sources.items():
            loops = sorted(set(spec.topics) & self._forbidden)
            if loops:
                self.refused[name] = f"reads slawatch's own topic(s) {', '.join(loops)}"
                log.error("source %s refused: %s", name, self.refused[name])
        sources = {n: s for n, s in sources.items() if n not in self.refused}
        for name in list(self._running):
            if name not in sources or sources[name] != self._running[name].runner.spec:
                await self._stop(name)
        for name, spec in sources.items():
            if name not in self._running:
                self._start(name, spec)

    def _start(self, name: str, spec: SourceSpec) -> None:
        runner = self._factory(name, spec)
        runner.set_paused(name in self._paused)
        stop = asyncio.Event()
        task = asyncio.create_task(runner.run(stop), name=f"ingest-source-{name}")
        task.add_done_callback(functools.partial(self._on_done, name))
        self._running[name] = _Running(runner, stop, task)
        log.info("source started", extra={"source": name, "topics": spec.topics})

    def _on_done(self, name: str, task: asyncio.Task[None]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        running = self._running.get(name)
        if error is None and running is not None and not running.stop.is_set():
            error = RuntimeError(f"source {name} ended unexpectedly")
        if error is not None:
            log.error("source %s failed", name, exc_info=error)
            self.failure = self.failure or error
            self._failed.set()

    async def _stop(self, name: str) -> None:
        running = self._running.pop(name)
        running.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(running.task), self._stop_grace_s)
        except TimeoutError:
            running.task.cancel()
        except Exception:  # noqa: BLE001 - already logged by the done callback
            log.debug("source %s had failed before it was stopped", name)
        log.info("source stopped", extra={"source": name})

    def set_paused(self, name: str, paused: bool) -> bool:
        """False when there is no such source."""
        running = self._running.get(name)
        if running is None:
            return False
        (self._paused.add if paused else self._paused.discard)(name)
        running.runner.set_paused(paused)
        return True

    def status(self) -> list[dict[str, Any]]:
        running = [
            {
                "name": name,
                "topics": list(r.runner.spec.topics),
                "paused": r.runner.paused,
                "lag": r.runner.lag,
                "running": not r.task.done(),
            }
            for name, r in self._running.items()
        ]
        refused = [
            {"name": name, "running": False, "error": why} for name, why in self.refused.items()
        ]
        return sorted([*running, *refused], key=lambda s: str(s["name"]))

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop`` (then every runner stops) or a runner fails (raised)."""
        # Run again after a failure (ingest's main restarts it after an outage): clean.
        self._failed.clear()
        self.failure = None
        waits = [asyncio.create_task(stop.wait()), asyncio.create_task(self._failed.wait())]
        try:
            await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for wait in waits:
                wait.cancel()
            await asyncio.gather(*(self._stop(name) for name in list(self._running)))
        if self.failure is not None:
            raise self.failure
