"""Producing records and awaiting every acknowledgement.

:class:`KafkaPublisher` hands all records of a batch to the producer as record
batches per partition (acks=all from ``shared.kafka.producer``), then awaits
every delivery future. The outcome is per record (a failed batch fails each of
its records), so nothing is silently lost.
:func:`send_with_retries` sends the unacknowledged ones again (a broker that just
restarted or moved a leader fails a first send); a retried record may land after
a later record of the same batch.

Never into a topic that is not there as configured: a ``gate``
(``shared.topic_guard.TopicGuard``) refuses a topic it found missing or wrongly
partitioned, and the partition count the producer sees must be the configured one;
otherwise each record of that topic fails at once (ingest answers 503 with
Retry-After) instead of waiting for, or creating, a topic with the broker's default
partition count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from aiokafka.partitioner import DefaultPartitioner

from services.ingest.records import OutRecord

log = logging.getLogger(__name__)


class Publisher(Protocol):
    """What the HTTP API and the raw consumer need from the producer side."""

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        """Produce ``records``; per record ``None`` once acknowledged, else why not."""
        ...

    async def ready(self) -> bool:
        """True when the broker answers."""
        ...


class TopicGate(Protocol):
    """Whether a topic may be produced into now (``shared.topic_guard.TopicGuard``)."""

    def refusal(self, topic: str) -> str | None:
        """Why not, or None."""
        ...


class KafkaPublisher:
    """A :class:`Publisher` over a started ``AIOKafkaProducer`` (owned by the caller).

    Records are grouped per (topic, partition) and handed over as whole record
    batches (``send_batch``), about twice as fast as one ``send`` per record. The
    partition is what the producer itself would choose for the key (murmur2 over
    the sorted partition list, as Kafka's default partitioner), so ``service`` keys
    land where they always did. A batch that fails fails each of its records; a
    record too large for a batch goes alone through ``send`` (which enforces the
    request size cap and reports it per record).
    """

    def __init__(
        self,
        producer: AIOKafkaProducer,
        *,
        gate: TopicGate | None = None,
        partitions: Mapping[str, int] | None = None,
    ) -> None:
        self._producer = producer
        self._partitioner = DefaultPartitioner()
        self._gate = gate
        self._expected = dict(partitions or {})

    async def _partitions(self, topic: str) -> list[int] | str:
        """The topic's partitions, or why it must not be produced into now."""
        refused = self._gate.refusal(topic) if self._gate is not None else None
        if refused is not None:
            return refused
        try:
            every = sorted(await self._producer.partitions_for(topic))
        except KafkaError as exc:
            return _describe(exc)
        expected = self._expected.get(topic)
        if expected is not None and len(every) != expected:
            return f"topic {topic} has {len(every)} partitions, configured {expected}"
        return every

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        results: list[str | None] = [None] * len(records)
        groups: dict[tuple[str, int], list[int]] = {}
        partitions: dict[str, list[int] | str] = {}
        for i, record in enumerate(records):
            if record.topic not in partitions:
                partitions[record.topic] = await self._partitions(record.topic)
            every = partitions[record.topic]
            if isinstance(every, str):
                results[i] = every
                continue
            partition = self._partitioner(record.key, every, every)
            groups.setdefault((record.topic, partition), []).append(i)
        pending: list[tuple[list[int], asyncio.Future[Any]]] = []
        for (topic, partition), indexes in groups.items():
            await self._send_group(records, topic, partition, indexes, pending, results)
        outcomes = await asyncio.gather(*(f for _, f in pending), return_exceptions=True)
        for (members, _), outcome in zip(pending, outcomes, strict=True):
            if isinstance(outcome, BaseException):
                for i in members:
                    results[i] = _describe(outcome)
        return results

    async def _send_group(
        self,
        records: Sequence[OutRecord],
        topic: str,
        partition: int,
        indexes: list[int],
        pending: list[tuple[list[int], asyncio.Future[Any]]],
        results: list[str | None],
    ) -> None:
        async def flush(batch: Any, members: list[int]) -> None:
            if not members:
                return
            try:
                future = await self._producer.send_batch(batch, topic, partition=partition)
            except KafkaError as exc:
                for i in members:
                    results[i] = _describe(exc)
            else:
                pending.append((members, future))

        batch = self._producer.create_batch()
        members: list[int] = []
        for i in indexes:
            record = records[i]
            if batch.append(key=record.key, value=record.value, timestamp=None) is not None:
                members.append(i)
                continue
            await flush(batch, members)
            batch, members = self._producer.create_batch(), []
            if batch.append(key=record.key, value=record.value, timestamp=None) is not None:
                members.append(i)
                continue
            try:  # larger than a whole batch: alone, with the producer's size check
                future = await self._producer.send(
                    topic, record.value, key=record.key, partition=partition
                )
            except KafkaError as exc:
                results[i] = _describe(exc)
            else:
                pending.append(([i], future))
        await flush(batch, members)

    async def ready(self) -> bool:
        await self._producer.client.fetch_all_metadata()
        return True


async def send_with_retries(
    publisher: Publisher,
    records: Sequence[OutRecord],
    *,
    attempts: int,
    backoff_s: float,
    sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
) -> list[str | None]:
    """Send, then re-send only the unacknowledged records, up to ``attempts`` rounds with
    doubling pauses; the result is per record, in ``records`` order."""
    outcomes: list[str | None] = [None] * len(records)
    todo = list(range(len(records)))
    for attempt in range(1, attempts + 1):
        errors = await publisher.send_all([records[i] for i in todo])
        for i, error in zip(todo, errors, strict=True):
            outcomes[i] = error
        todo = [i for i in todo if outcomes[i] is not None]
        if not todo:
            break
        log.warning(
            "%d of %d records not acknowledged (attempt %d of %d): %s",
            len(todo),
            len(records),
            attempt,
            attempts,
            outcomes[todo[0]],
        )
        if attempt < attempts:
            await sleep(backoff_s * 2 ** (attempt - 1))
    return outcomes


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
