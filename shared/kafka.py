"""Kafka client factory: configurations that work on the embedded broker and on Apache Kafka.

Never relied on: the idempotent producer, transactions, auto-commit, end offsets,
topic auto-creation (every client built here forbids it, ``shared.kafka_metadata``).
Exactly-once effects come from our own design (state + offsets in PostgreSQL,
deterministic ids). The idempotent producer is still used where the broker has it
(:func:`start_producer`, Apache Kafka): it keeps producer retries from writing a
record twice or out of order, which our design tolerates but need not pay for.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import UnknownError, UnsupportedVersionError

from shared.errors import ConfigError
from shared.kafka_metadata import forbid_topic_auto_creation
from shared.settings import Settings

log = logging.getLogger(__name__)

MAX_REQUEST_BYTES = 1024 * 1024
#: What a broker without the idempotent producer answers to InitProducerId (the
#: embedded broker: UnknownError, at once).
IDEMPOTENCE_REFUSED = (UnknownError, UnsupportedVersionError)
#: Per bootstrap string: does the broker take the idempotent producer (asked once).
_idempotence_supported: dict[str, bool] = {}


def bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise ConfigError("SLAWATCH_KAFKA_BOOTSTRAP is not set and no embedded broker was started")
    return settings.kafka_bootstrap


#: How old the client's cluster metadata may grow (aiokafka's default is 5 min). After
#: every broker of a cluster restarted, aiokafka retries a ListOffsets refused with
#: NOT_LEADER_FOR_PARTITION at the old leader without refreshing its metadata, so a
#: consumer seeking to a log start stalls until the next refresh (found by the chaos
#: suite: tests/chaos/test_infrastructure.py::test_broker_restarted on Apache Kafka).
METADATA_MAX_AGE_MS = 5_000


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """acks=all, no idempotence (see :func:`start_producer`), a 1 MiB request cap like
    Apache Kafka's default."""
    forbid_topic_auto_creation()
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "acks": "all",
        "enable_idempotence": False,
        "max_request_size": MAX_REQUEST_BYTES,
        "linger_ms": 2,
        "request_timeout_ms": 15_000,
        "metadata_max_age_ms": METADATA_MAX_AGE_MS,
    }
    config.update(overrides)
    return AIOKafkaProducer(**config)


async def start_producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """A started :func:`producer`, idempotent per ``settings.kafka_idempotence``.

    "auto" starts an idempotent producer and, if the broker refuses it, a plain one
    (the answer is remembered per bootstrap); "on" fails on such a broker; "off" and
    an explicit ``enable_idempotence`` override never ask.
    """
    mode = settings.kafka_idempotence
    address = bootstrap(settings)
    wanted = mode == "on" or (mode == "auto" and _idempotence_supported.get(address, True))
    if wanted and "enable_idempotence" not in overrides:
        started = producer(settings, **{**overrides, "enable_idempotence": True})
        try:
            await started.start()
        except IDEMPOTENCE_REFUSED as error:
            await started.stop()
            if mode == "on":
                raise ConfigError(
                    f"SLAWATCH_KAFKA_IDEMPOTENCE=on but the broker refuses it: {error!r}"
                ) from error
            _idempotence_supported[address] = False
            log.info("the broker has no idempotent producer; producing without it")
        else:
            _idempotence_supported[address] = True
            return started
    plain = producer(settings, **overrides)
    await plain.start()
    return plain


def is_idempotent(started: AIOKafkaProducer) -> bool:
    """Whether a producer was built idempotent (for tests and logs)."""
    # aiokafka has no public flag: it builds a transaction manager exactly when
    # idempotence (or transactions) is on.
    return started._txn_manager is not None


def consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """Manual commits, earliest reset (latest is wrong on the embedded broker)."""
    forbid_topic_auto_creation()
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "max_poll_interval_ms": 300_000,
        "metadata_max_age_ms": METADATA_MAX_AGE_MS,
    }
    config.update(overrides)
    return AIOKafkaConsumer(*topics, **config)


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
    forbid_topic_auto_creation()
    return AIOKafkaAdminClient(bootstrap_servers=bootstrap(settings), request_timeout_ms=15_000)


class FinishBatchOnRevoke(ConsumerRebalanceListener):  # type: ignore[misc]
    """Makes a rebalance wait until the batch in progress (held under ``lock``) is
    produced and committed."""

    def __init__(self, lock: asyncio.Lock) -> None:
        self._lock = lock

    async def on_partitions_revoked(self, revoked: Any) -> None:
        async with self._lock:
            pass

    async def on_partitions_assigned(self, assigned: Any) -> None:
        return None
