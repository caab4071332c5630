"""Kafka client factory: configurations that work on the embedded broker and on Apache Kafka.

Never relied on: the idempotent producer, transactions, auto-commit, end offsets.
Exactly-once effects come from our own design (state + offsets in PostgreSQL,
deterministic ids).
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener
from aiokafka.admin import AIOKafkaAdminClient

from shared.errors import ConfigError
from shared.settings import Settings

MAX_REQUEST_BYTES = 1024 * 1024


def bootstrap(settings: Settings) -> str:
    if not settings.kafka_bootstrap:
        raise ConfigError("SLAWATCH_KAFKA_BOOTSTRAP is not set and no embedded broker was started")
    return settings.kafka_bootstrap


def producer(settings: Settings, **overrides: Any) -> AIOKafkaProducer:
    """acks=all, no idempotence, a 1 MiB request cap like Apache Kafka's default."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "acks": "all",
        "enable_idempotence": False,
        "max_request_size": MAX_REQUEST_BYTES,
        "linger_ms": 2,
        "request_timeout_ms": 15_000,
    }
    config.update(overrides)
    return AIOKafkaProducer(**config)


def consumer(
    settings: Settings, *topics: str, group_id: str | None, **overrides: Any
) -> AIOKafkaConsumer:
    """Manual commits, earliest reset (latest is wrong on the embedded broker)."""
    config: dict[str, Any] = {
        "bootstrap_servers": bootstrap(settings),
        "group_id": group_id,
        "enable_auto_commit": False,
        "auto_offset_reset": "earliest",
        "session_timeout_ms": settings.kafka_session_timeout_ms,
        "heartbeat_interval_ms": settings.kafka_heartbeat_interval_ms,
        "fetch_max_wait_ms": settings.kafka_fetch_max_wait_ms,
        "max_poll_interval_ms": 300_000,
    }
    config.update(overrides)
    return AIOKafkaConsumer(*topics, **config)


def admin_client(settings: Settings) -> AIOKafkaAdminClient:
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
