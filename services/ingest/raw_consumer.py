"""The raw-topic loop: JSON records from any producer → events or dead letters.

Per polled batch, in this order (at-least-once):

1. route every record (``services.ingest.records.route_raw``): a valid one becomes
   its normalized event for the events topic, an invalid one a dead letter with
   reason ``invalid_json`` | ``not_an_object`` | ``invalid_event`` | ``future``;
2. produce all outputs and await every acknowledgement, retrying the
   unacknowledged ones a few times; if some still fail, raise
   :class:`PublishError` without committing (the service stops; on restart the
   batch is consumed again);
3. commit the next offsets of the batch.

A crash between 2 and 3 produces the batch's outputs twice; an event that had no
``id`` gets one derived from its record's coordinates, so the copies share it.
A rebalance waits for the batch in progress (the revoke callback takes the same
lock), so offsets are committed before partitions move; a batch polled just
before a revocation is produced but left uncommitted for the new owner.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError

from services.ingest.exceptions import PublishError
from services.ingest.metrics import IngestMetrics
from services.ingest.normalize import DEFAULT_MAX_FUTURE_SKEW_MS
from services.ingest.publisher import Publisher, send_with_retries
from services.ingest.records import OutRecord, RawRecord, Routed, route_raw
from shared.kafka import FinishBatchOnRevoke
from shared.logid import LogEndWatch
from shared.timeutil import Clock
from shared.topics import Topics

log = logging.getLogger(__name__)


def group_id(topic_prefix: str) -> str:
    """The consumer group of the raw path."""
    return f"{topic_prefix}-ingest-raw"


class RawConsumer:
    """Consumes the raw topic until ``stop`` is set; owns the consumer's start and stop."""

    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        publisher: Publisher,
        topics: Topics,
        metrics: IngestMetrics,
        clock: Clock,
        *,
        max_records: int = 500,
        poll_timeout_ms: int = 200,
        publish_attempts: int = 3,
        retry_backoff_s: float = 0.2,
        max_future_skew_ms: int = DEFAULT_MAX_FUTURE_SKEW_MS,
    ) -> None:
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
        self._log_end = LogEndWatch(metrics.offset_resets, "ingest-raw")

    async def run(self, stop: asyncio.Event) -> None:
        """Poll, route, produce, commit; between batches, return once ``stop`` is set."""
        self._consumer.subscribe([self._topics.raw], listener=FinishBatchOnRevoke(self._lock))
        await self._consumer.start()
        try:
            while not stop.is_set():
                batch = await self._consumer.getmany(
                    timeout_ms=self._poll_timeout_ms, max_records=self._max_records
                )
                async with self._lock:
                    if batch:
                        await self._handle(batch)
                        self._log_end.advance(batch)
                    await self._log_end.check(self._consumer)
        finally:
            await self._consumer.stop()

    async def _handle(self, batch: dict[TopicPartition, list[Any]]) -> None:
        received_at = self._clock()
        records = [
            RawRecord(r.topic, r.partition, r.offset, r.value)
            for messages in batch.values()
            for r in messages
        ]
        routed = [
            route_raw(
                record, self._topics, received_at, max_future_skew_ms=self._max_future_skew_ms
            )
            for record in records
        ]
        self._metrics.batch_size.labels("raw").observe(len(routed))
        started = time.perf_counter()
        await self._publish([r.out for r in routed])
        self._metrics.publish_seconds.labels("raw").observe(time.perf_counter() - started)
        self._count(routed)
        await self._commit(batch)

    async def _commit(self, batch: dict[TopicPartition, list[Any]]) -> None:
        # A partition revoked between the poll and the lock is no longer ours to commit:
        # its new owner consumes these records again (duplicates, never losses).
        assigned = self._consumer.assignment()
        offsets = {tp: msgs[-1].offset + 1 for tp, msgs in batch.items() if tp in assigned}
        if len(offsets) < len(batch):
            log.warning("raw batch produced for partitions revoked meanwhile; not committed")
        if not offsets:
            return
        try:
            await self._consumer.commit(offsets)
        except (CommitFailedError, IllegalStateError):
            log.warning("raw batch produced but its commit failed; it will be reprocessed")

    async def _publish(self, outputs: Sequence[OutRecord]) -> None:
        outcomes = await send_with_retries(
            self._publisher,
            outputs,
            attempts=self._publish_attempts,
            backoff_s=self._retry_backoff_s,
        )
        failed = [error for error in outcomes if error is not None]
        if failed:
            raise PublishError(f"{len(failed)} raw-path records not acknowledged: {failed[0]}")

    def _count(self, routed: Sequence[Routed]) -> None:
        events = 0
        for r in routed:
            if r.reason is None:
                events += 1
            else:
                self._metrics.count_rejected("raw", r.reason)
        self._metrics.count_ingested("raw", events)
