"""Which log a stored offset belongs to, and whether it may be used.

An offset only means something in the log it was read from. A checkpoint therefore
records the log's identity: the broker's cluster id and the topic's id. Apache Kafka
reports both (Metadata v10 and later). The embedded broker is memory only, so every
start is a new log; it is started with a fresh cluster id (shared.embedded), which is
the identity the project can prove there.

On assignment a stored offset is used only when (:func:`decide_resume`):

- it was stored for the same log (cluster id and, where both sides know one, topic id);
- it is not past the partition's log end (known from the fetches' high watermark;
  ``end_offsets`` is wrong on the embedded broker) for longer than a grace
  (:class:`ShortLogJudge`): Apache Kafka's watermark lags the log after a restart.

Otherwise the consumer resumes at the log start, keeps the state it has (the new log
holds new events), logs a warning naming topic, partition and both offsets, and
counts ``slawatch_offset_resets_total{topic,reason}``.
"""

from __future__ import annotations

import asyncio
import enum
import logging
import time
import uuid
import weakref
from collections.abc import Callable
from dataclasses import dataclass
from io import BytesIO
from typing import Any

from aiokafka.protocol.api import Request, RequestStruct, Response
from aiokafka.protocol.types import (
    AbstractType,
    Boolean,
    CompactArray,
    CompactString,
    Int16,
    Int32,
    Schema,
    TaggedFields,
)
from prometheus_client import CollectorRegistry, Counter

log = logging.getLogger(__name__)

#: The topic id Kafka reports for "none" (an all-zero UUID).
_ZERO_UUID = bytes(16)


@dataclass(frozen=True)
class LogIdentity:
    """The log an offset was read from: the cluster, and the topic where known."""

    cluster_id: str
    topic_id: str | None = None

    def same_log(self, other: LogIdentity) -> bool:
        """Same cluster, and the same topic where both sides know the topic id."""
        if self.cluster_id != other.cluster_id:
            return False
        if self.topic_id is None or other.topic_id is None:
            return True
        return self.topic_id == other.topic_id

    def encode(self) -> str:
        return f"{self.cluster_id}/{self.topic_id or ''}"

    @classmethod
    def decode(cls, text: str | None) -> LogIdentity | None:
        """None for a checkpoint written before identities were recorded."""
        if not text:
            return None
        cluster, _, topic = text.rpartition("/")
        return cls(cluster, topic or None)


class ResetReason(enum.StrEnum):
    """Why a stored offset was not used (the ``reason`` label of the reset counter)."""

    OTHER_LOG = "other_log"
    BEYOND_LOG_END = "beyond_log_end"


def decide_identity(stored: LogIdentity | None, current: LogIdentity) -> ResetReason | None:
    """None when an offset stored under ``stored`` may be used in ``current``'s log.

    A checkpoint without an identity (written before they were recorded) is trusted:
    it can only have come from the log the running deployment has always used.
    """
    if stored is None or stored.same_log(current):
        return None
    return ResetReason.OTHER_LOG


def decide_log_end(next_offset: int, log_end: int) -> ResetReason | None:
    """None when ``next_offset`` lies within the log (at its end at most)."""
    return ResetReason.BEYOND_LOG_END if next_offset > log_end else None


#: How long a log end must stay below a position before the log counts as replaced.
#: Apache Kafka's high watermark lags the log after a restart (a new leader starts
#: from its last checkpointed watermark and moves it once followers catch up), so a
#: position past it for a moment is not a lost log; an emptied log stays short.
SHORT_LOG_GRACE_MS = 30_000


class ShortLogJudge:
    """Decides, per partition, when a log end below the position is a replaced log:
    only after it stayed below for ``grace_ms`` (:data:`SHORT_LOG_GRACE_MS`). Pure:
    the caller passes the time (milliseconds, any monotonic origin)."""

    def __init__(self, grace_ms: int = SHORT_LOG_GRACE_MS) -> None:
        self.grace_ms = grace_ms
        self._short_since: dict[Any, int] = {}

    def observe(self, key: Any, next_offset: int, log_end: int, now_ms: int) -> ResetReason | None:
        """BEYOND_LOG_END once ``next_offset > log_end`` has held for the grace."""
        if decide_log_end(next_offset, log_end) is None:
            self._short_since.pop(key, None)
            return None
        since = self._short_since.setdefault(key, now_ms)
        if now_ms - since < self.grace_ms:
            return None
        del self._short_since[key]
        return ResetReason.BEYOND_LOG_END

    def forget(self, key: Any) -> None:
        """The partition moved (reset, revoked): its short spell, if any, is over."""
        self._short_since.pop(key, None)


_RESET_COUNTERS: weakref.WeakKeyDictionary[CollectorRegistry, Counter] = weakref.WeakKeyDictionary()


def offset_resets(registry: CollectorRegistry) -> Counter:
    """``slawatch_offset_resets_total{topic,reason}`` of ``registry`` (one per registry,
    shared by every consumer of a service): stored offsets not used."""
    counter = _RESET_COUNTERS.get(registry)
    if counter is None:
        counter = Counter(
            "slawatch_offset_resets_total",
            "Stored offsets not used because they belong to another log or lie past its "
            "end; the consumer resumed at the log start",
            ["topic", "reason"],
            registry=registry,
        )
        _RESET_COUNTERS[registry] = counter
    return counter


# -- Metadata v12: the one request that reports topic ids --------------------------------


class _Uuid(AbstractType[str | None]):  # type: ignore[misc]
    """A Kafka UUID (16 bytes); the all-zero UUID means none."""

    @classmethod
    def encode(cls, value: str | None) -> bytes:
        return _ZERO_UUID if value is None else uuid.UUID(value).bytes

    @classmethod
    def decode(cls, data: BytesIO) -> str | None:
        raw = data.read(16)
        if len(raw) != 16:
            raise ValueError("Buffer underrun decoding a UUID")
        return None if raw == _ZERO_UUID else str(uuid.UUID(bytes=raw))


class _MetadataResponseV12(Response):  # type: ignore[misc]
    API_KEY = 3
    API_VERSION = 12
    SCHEMA = Schema(
        ("throttle_time_ms", Int32),
        (
            "brokers",
            CompactArray(
                ("node_id", Int32),
                ("host", CompactString("utf-8")),
                ("port", Int32),
                ("rack", CompactString("utf-8")),
                ("tags", TaggedFields),
            ),
        ),
        ("cluster_id", CompactString("utf-8")),
        ("controller_id", Int32),
        (
            "topics",
            CompactArray(
                ("error_code", Int16),
                ("name", CompactString("utf-8")),
                ("topic_id", _Uuid),
                ("is_internal", Boolean),
                (
                    "partitions",
                    CompactArray(
                        ("error_code", Int16),
                        ("partition_index", Int32),
                        ("leader_id", Int32),
                        ("leader_epoch", Int32),
                        ("replica_nodes", CompactArray(Int32)),
                        ("isr_nodes", CompactArray(Int32)),
                        ("offline_replicas", CompactArray(Int32)),
                        ("tags", TaggedFields),
                    ),
                ),
                ("topic_authorized_operations", Int32),
                ("tags", TaggedFields),
            ),
        ),
        ("tags", TaggedFields),
    )


class _MetadataRequestV12(RequestStruct):  # type: ignore[misc]
    FLEXIBLE_VERSION = True
    API_KEY = 3
    API_VERSION = 12
    RESPONSE_TYPE = _MetadataResponseV12
    SCHEMA = Schema(
        (
            "topics",
            CompactArray(
                ("topic_id", _Uuid), ("name", CompactString("utf-8")), ("tags", TaggedFields)
            ),
        ),
        ("allow_auto_topic_creation", Boolean),
        ("include_topic_authorized_operations", Boolean),
        ("tags", TaggedFields),
    )


class _TopicIdsRequest(Request[_MetadataRequestV12]):  # type: ignore[misc]
    """Metadata of named topics, never creating them."""

    API_KEY = 3

    def __init__(self, topics: list[str]) -> None:
        self._topics = topics

    def build(self, request_struct_class: type[_MetadataRequestV12]) -> _MetadataRequestV12:
        return request_struct_class([(None, name, {}) for name in self._topics], False, False, {})


async def fetch_identities(client: Any, topics: list[str]) -> dict[str, LogIdentity]:
    """The identity of each topic's log, from any broker ``client`` (an aiokafka
    ``AIOKafkaClient``, e.g. ``consumer._client`` or ``producer.client``) reaches.

    Brokers without Metadata v12 answer with the cluster id only (topic ids None).
    """
    node_id = client.get_random_node()
    if node_id is None:
        await client.force_metadata_update()
        node_id = client.get_random_node()
    try:
        response = await client.send(node_id, _TopicIdsRequest(topics))
    except NotImplementedError:  # the broker has no Metadata v12: cluster id only
        from aiokafka.protocol.metadata import MetadataRequest

        response = await client.send(node_id, MetadataRequest([]))
        cluster_id = getattr(response, "cluster_id", None) or ""
        return {name: LogIdentity(cluster_id) for name in topics}
    cluster_id = response.cluster_id or ""
    ids = {name: topic_id for _, name, topic_id, *_ in response.topics}
    return {name: LogIdentity(cluster_id, ids.get(name)) for name in topics}


class LogEndWatch:
    """For consumers whose offsets Kafka keeps (notifier, raw topic, sources): a
    position past a partition's log end means the log was replaced under a running
    consumer (a broker that restarted empty without a rebalance). The embedded broker
    then answers every fetch with nothing, so the consumer would wait forever; this
    watch seeks such a partition to its log start, with a warning and a count.

    A replaced log is told by the cluster identity (:func:`fetch_identities`, asked
    again every :data:`BASELINE_REFRESH_MS` while all is well and when a partition
    falls short): a new identity resets at once (``other_log``). Under the same
    identity the position may only be ahead of a lagging high watermark (Apache Kafka
    after a restart), so :class:`ShortLogJudge` waits the grace out first.
    """

    def __init__(
        self,
        resets: Counter,
        consumer_name: str,
        *,
        grace_ms: int = SHORT_LOG_GRACE_MS,
        clock_ms: Callable[[], int] | None = None,
    ) -> None:
        self._resets = resets
        self._consumer_name = consumer_name
        self._next: dict[Any, int] = {}
        self._judge = ShortLogJudge(grace_ms)
        self._clock_ms = clock_ms or (lambda: int(time.monotonic() * 1000))
        self._baseline: dict[str, LogIdentity] = {}
        self._baseline_at: int | None = None

    def advance(self, batch: dict[Any, list[Any]]) -> None:
        """Note the next offset of every partition in a consumed batch."""
        for tp, records in batch.items():
            if records:
                self._next[tp] = records[-1].offset + 1

    async def check(self, consumer: Any) -> list[Any]:
        """Seek every assigned partition whose position is past its high watermark in a
        replaced log (or for longer than the grace) to the log start; returns those."""
        assigned = consumer.assignment()
        now = self._clock_ms()
        short = []
        for tp, next_offset in list(self._next.items()):
            if tp not in assigned:
                del self._next[tp]
                self._judge.forget(tp)
                continue
            highwater = consumer.highwater(tp)
            if highwater is not None and decide_log_end(next_offset, highwater):
                short.append((tp, next_offset, highwater))
            else:
                self._judge.forget(tp)
        topics = sorted({tp.topic for tp in self._next})
        if not short:
            due = self._baseline_at is None or now - self._baseline_at >= BASELINE_REFRESH_MS
            if topics and due:
                self._baseline_at = now
                self._baseline.update(await self._identities(consumer, topics))
            return []
        current = await self._identities(consumer, sorted({tp.topic for tp, _, _ in short}))
        moved = []
        for tp, next_offset, highwater in short:
            before, now_id = self._baseline.get(tp.topic), current.get(tp.topic)
            replaced = before is not None and now_id is not None and not before.same_log(now_id)
            reason = (
                ResetReason.OTHER_LOG
                if replaced
                else self._judge.observe(tp, next_offset, highwater, now)
            )
            if reason is None:
                continue
            log.warning(
                "position past the log end: resuming at the log start",
                extra={
                    "consumer": self._consumer_name,
                    "topic": tp.topic,
                    "partition": tp.partition,
                    "stored_offset": next_offset,
                    "log_end": highwater,
                    "reason": reason.value,
                },
            )
            self._resets.labels(tp.topic, reason.value).inc()
            del self._next[tp]
            self._judge.forget(tp)
            await consumer.seek_to_beginning(tp)
            moved.append(tp)
        self._baseline.update(current)
        return moved

    async def _identities(self, consumer: Any, topics: list[str]) -> dict[str, LogIdentity]:
        return await _identities(consumer, topics)


#: How often a :class:`LogEndWatch` asks the cluster identity while no log is short.
BASELINE_REFRESH_MS = 60_000


async def _identities(consumer: Any, topics: list[str]) -> dict[str, LogIdentity]:
    """The topics' log identities over ``consumer``'s connection; empty when the broker
    cannot tell now (the caller falls back to the grace)."""
    client = getattr(consumer, "_client", None)  # aiokafka keeps its broker client private
    if client is None:
        return {}
    try:
        return await asyncio.wait_for(fetch_identities(client, topics), IDENTITY_TIMEOUT_S)
    except Exception as exc:  # noqa: BLE001 - unknown identity: the grace decides
        log.debug("log identity unavailable: %r", exc)
        return {}


IDENTITY_TIMEOUT_S = 2.0
