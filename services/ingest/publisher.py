"""Producing records and awaiting every acknowledgement.

:class:`KafkaPublisher` hands all records of a batch to the producer (which
batches them per partition; acks=all from ``shared.kafka.producer``), then awaits
every delivery future. The outcome is per record, so one failed record is
reported as failed instead of failing — or silently losing — its neighbours.
:func:`send_with_retries` sends the unacknowledged ones again (a broker that just
restarted or moved a leader fails a first send); a retried record may land after
a later record of the same batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, Protocol

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

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
