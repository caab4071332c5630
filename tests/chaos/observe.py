"""Reading a run's results from the real parts: topics, evaluator API, PostgreSQL.

* :func:`read_topic` reads a topic from its start to its end as a consumer without a
  group. The end is "a poll that returns nothing, twice": exact here because it is
  only called on a topic nobody produces to any more (every event was acknowledged),
  and it does not need end offsets, which the embedded broker gets wrong.
* :func:`evaluator_counts` merges ``/v1/objectives/.../status`` of every evaluator
  instance (each answers for the partitions it owns).
* :func:`checkpoint_offsets` and :func:`notifier_settled` read the evaluator's
  checkpoints and the notifier's outbox straight from PostgreSQL.
"""

from __future__ import annotations

import asyncpg
import httpx
import orjson
from aiokafka import TopicPartition

from shared import kafka
from shared.settings import Settings
from shared.topics import topic_partitions
from tests.chaos.script import AGREEMENT, objective_names

FINAL_STATUSES = ("delivered", "dead", "suppressed", "cancelled", "merged")


async def read_topic(settings: Settings, topic: str) -> dict[int, list[bytes]]:
    """Every record value of ``topic`` per partition, from the log start."""
    consumer = kafka.consumer(settings, group_id=None, fetch_max_wait_ms=200)
    await consumer.start()
    try:
        partitions = _partitions(settings, topic)
        parts = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        found: dict[int, list[bytes]] = {p: [] for p in partitions}
        empty = 0
        while empty < 2:
            batch = await consumer.getmany(timeout_ms=300, max_records=5_000)
            empty = 0 if batch else empty + 1
            for tp, records in batch.items():
                found[tp.partition].extend(r.value for r in records if r.value is not None)
        return found
    finally:
        await consumer.stop()


def _partitions(settings: Settings, topic: str) -> list[int]:
    """The partitions the stack created the topic with (shared.topics; the topic guard
    of every service keeps that count)."""
    return list(range(topic_partitions(settings)[topic]))


async def topic_ends(settings: Settings, topic: str) -> dict[int, int]:
    """Per partition, the offset after the last record (by reading, see module doc)."""
    consumer = kafka.consumer(settings, group_id=None, fetch_max_wait_ms=200)
    await consumer.start()
    try:
        partitions = _partitions(settings, topic)
        parts = [TopicPartition(topic, p) for p in partitions]
        consumer.assign(parts)
        await consumer.seek_to_beginning(*parts)
        ends = {p: 0 for p in partitions}
        empty = 0
        while empty < 2:
            batch = await consumer.getmany(timeout_ms=300, max_records=5_000)
            empty = 0 if batch else empty + 1
            for tp, records in batch.items():
                ends[tp.partition] = records[-1].offset + 1
        return ends
    finally:
        await consumer.stop()


def breach_triples(records: dict[int, list[bytes]]) -> list[tuple[str, str, int]]:
    triples = []
    for values in records.values():
        for value in values:
            breach = orjson.loads(value)
            triples.append((breach["id"], breach["kind"], int(breach["at"])))
    return triples


async def evaluator_counts(
    client: httpx.AsyncClient, urls: list[str]
) -> dict[str, tuple[int, int]]:
    """``"<objective>|<group>"`` → (good, valid) over every instance's owned groups."""
    counts: dict[str, tuple[int, int]] = {}
    for url in urls:
        for objective in objective_names():
            response = await client.get(f"{url}/v1/objectives/{AGREEMENT}/{objective}/status")
            response.raise_for_status()
            for group in response.json()["groups"]:
                key = f"{objective}|{group['group'].get('customer', '')}"
                counts[key] = (group["good"], group["valid"])
    return counts


async def evaluator_ownership(client: httpx.AsyncClient, url: str) -> tuple[set[int], set[int]]:
    """One instance's partitions, and those of them its groups' events are in."""
    owned: set[int] = set()
    with_data: set[int] = set()
    for objective in objective_names():
        response = await client.get(f"{url}/v1/objectives/{AGREEMENT}/{objective}/status")
        response.raise_for_status()
        body = response.json()
        owned = set(body["partitions"])
        with_data |= {group["partition"] for group in body["groups"]}
    return owned, with_data


def _dsn(settings: Settings) -> str:
    assert settings.database_url is not None
    return settings.database_url.replace("postgresql+asyncpg://", "postgresql://")


async def checkpoint_offsets(settings: Settings) -> dict[int, int]:
    conn = await asyncpg.connect(_dsn(settings), timeout=5)
    try:
        rows = await conn.fetch(
            "SELECT partition, next_offset FROM evaluator_checkpoints"
            " WHERE consumer_group = $1 AND topic = $2",
            f"{settings.topic_prefix}-evaluator",
            f"{settings.topic_prefix}.events",
        )
    finally:
        await conn.close()
    return {row["partition"]: row["next_offset"] for row in rows}


async def delivery_created(settings: Settings) -> dict[tuple[str, str], float]:
    """(receiver, idempotency key) → when the outbox row was made (epoch seconds)."""
    conn = await asyncpg.connect(_dsn(settings), timeout=5)
    try:
        rows = await conn.fetch("SELECT breach_id, kind, at, receiver, created_at FROM deliveries")
    finally:
        await conn.close()
    return {
        (row["receiver"], f"{row['breach_id']}:{row['kind']}:{row['at']}"): (
            row["created_at"].timestamp()
        )
        for row in rows
    }


async def notifier_settled(settings: Settings, breaches: set[tuple[str, str, int]]) -> bool:
    """The notifier recorded every breach event and no delivery is still open."""
    conn = await asyncpg.connect(_dsn(settings), timeout=5)
    try:
        recorded = {
            (row["breach_id"], row["kind"], row["at"])
            for row in await conn.fetch("SELECT breach_id, kind, at FROM breach_events")
        }
        open_rows = await conn.fetchval(
            "SELECT count(*) FROM deliveries WHERE status <> ALL($1::text[])",
            list(FINAL_STATUSES),
        )
    finally:
        await conn.close()
    return breaches <= recorded and open_rows == 0
