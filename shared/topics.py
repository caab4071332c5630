"""Topic names (prefix configurable) and their creation on start."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared.settings import Settings

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36


@dataclass(frozen=True)
class Topics:
    """The four topics of DESIGN.md under one prefix."""

    raw: str
    events: str
    breaches: str
    deadletter: str

    @classmethod
    def from_prefix(cls, prefix: str) -> Topics:
        return cls(
            raw=f"{prefix}.events.raw",
            events=f"{prefix}.events",
            breaches=f"{prefix}.breaches",
            deadletter=f"{prefix}.deadletter",
        )

    @classmethod
    def from_settings(cls, settings: Settings) -> Topics:
        return cls.from_prefix(settings.topic_prefix)


def topic_partitions(settings: Settings) -> dict[str, int]:
    topics = Topics.from_settings(settings)
    return {
        topics.raw: settings.raw_events_partitions,
        topics.events: settings.events_partitions,
        topics.breaches: settings.breaches_partitions,
        topics.deadletter: settings.deadletter_partitions,
    }


def topic_configs(settings: Settings) -> dict[str, str]:
    """Per-topic configs: ``min.insync.replicas`` only where it is below the
    replication factor (RF 1 on the embedded broker keeps the broker's default; a
    minimum equal to the RF would stop acks=all writes when any one broker is down)."""
    if settings.topic_min_insync_replicas < settings.topic_replication_factor:
        return {"min.insync.replicas": str(settings.topic_min_insync_replicas)}
    return {}


async def ensure_topics(settings: Settings) -> None:
    """Create every topic with its configured partition count; existing ones are kept.

    Topics must never be auto-created: the embedded broker would give them 4
    partitions whatever the configuration says.
    """
    from shared.kafka import admin_client

    admin: AIOKafkaAdminClient = admin_client(settings)
    await admin.start()
    try:
        wanted = topic_partitions(settings)
        existing = set(await admin.list_topics())
        configs = topic_configs(settings)
        missing = [
            NewTopic(
                name,
                num_partitions=n,
                replication_factor=settings.topic_replication_factor,
                topic_configs=configs,
            )
            for name, n in wanted.items()
            if name not in existing
        ]
        if missing:
            response = await admin.create_topics(missing)
            for name, code, *_ in getattr(response, "topic_errors", []):
                if code not in (0, TOPIC_ALREADY_EXISTS):
                    raise RuntimeError(f"cannot create topic {name}: error code {code}")
            log.info("topics created", extra={"topics": [t.name for t in missing]})
    finally:
        await admin.close()
