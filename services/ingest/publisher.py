"""Producing records and awaiting every acknowledgement.

:class:`KafkaPublisher` hands all records of a batch to the producer (which
batches them per partition; acks=all from ``shared.kafka.producer``), then awaits
every delivery future. The outcome is per record, so one failed record is
reported as failed instead of failing — or silently losing — its neighbours.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from services.ingest.records import OutRecord


class Publisher(Protocol):
    """What the HTTP API and the raw consumer need from the producer side."""

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        """Produce ``records``; per record ``None`` once acknowledged, else why not."""
        ...

    async def ready(self) -> bool:
        """True when the broker answers."""
        ...


class KafkaPublisher:
    """A :class:`Publisher` over a started ``AIOKafkaProducer`` (owned by the caller)."""

    def __init__(self, producer: AIOKafkaProducer) -> None:
        self._producer = producer

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        pending: list[asyncio.Future[Any] | str] = []
        for record in records:
            try:
                future = await self._producer.send(record.topic, record.value, key=record.key)
            except KafkaError as exc:
                pending.append(_describe(exc))
            else:
                pending.append(future)
        futures = [p for p in pending if not isinstance(p, str)]
        outcomes = iter(await asyncio.gather(*futures, return_exceptions=True))
        results: list[str | None] = []
        for item in pending:
            if isinstance(item, str):
                results.append(item)
                continue
            outcome = next(outcomes)
            results.append(_describe(outcome) if isinstance(outcome, BaseException) else None)
        return results

    async def ready(self) -> bool:
        await self._producer.client.fetch_all_metadata()
        return True


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}" if str(error) else type(error).__name__
