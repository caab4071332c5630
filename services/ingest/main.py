"""Wiring of the ingest service, supervision and graceful shutdown.

Start: topics ensured → producer started → raw consumer task, source runners
(``services.ingest.source_service``) and HTTP server task
under a :class:`shared.runtime.Supervisor`.

Stop (``stop`` set, or a task failed), within ``settings.shutdown_grace_s``:

1. the HTTP intake stops accepting (new requests are answered 503 with
   ``Retry-After``, ``/readyz`` turns 503) and the requests already admitted finish
   (each awaits its acknowledgements); then the HTTP server stops. Meanwhile the raw
   loop finishes its batch and commits;
2. whatever has not finished by the deadline is cancelled;
3. the producer flushes and stops (bounded by the remaining grace time).

A task failure is re-raised once everything is stopped.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry

from services.ingest.api import IngestDeps, create_app
from services.ingest.backpressure import Drain
from services.ingest.config import config_router
from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import KafkaPublisher
from services.ingest.raw_consumer import RawConsumer, group_id
from services.ingest.source_service import SourcesService
from shared import db, kafka
from shared.definitions.kinds.source import SourceSpec
from shared.metrics import new_registry
from shared.runtime import HttpServer, Supervisor
from shared.settings import Settings
from shared.timeutil import Clock, wall_clock_ms
from shared.topics import Topics, ensure_topics

log = logging.getLogger(__name__)


async def run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None = None,
    clock: Clock = wall_clock_ms,
    http_options: Mapping[str, Any] | None = None,
    sources: Mapping[str, SourceSpec] | None = None,
) -> None:
    """Run ingest until ``stop`` is set; raise the first task failure.

    ``http_options`` override :class:`IngestDeps` fields, including the bounds taken
    from ``settings`` (:func:`http_limits`);
    ``sources`` replaces the Source definitions from the database (tests, benchmarks).
    """
    registry = registry if registry is not None else new_registry()
    metrics = IngestMetrics(registry)
    topics = Topics.from_settings(settings)
    await ensure_topics(settings)
    # With a database, ingest also serves the configuration API (/v1/agreements, ...).
    database = None
    if settings.database_url:
        await db.migrate(settings.database_url)
        database = db.engine(settings, pool_size=2)

    loop = asyncio.get_running_loop()
    deadline: float | None = None
    producer = await kafka.start_producer(settings)
    supervisor = Supervisor()
    try:
        publisher = KafkaPublisher(producer)
        drain = Drain()
        deps = IngestDeps(
            publisher=publisher,
            topics=topics,
            metrics=metrics,
            clock=clock,
            drain=drain,
            **{**http_limits(settings), **(http_options or {})},
        )
        app = create_app(deps, registry, {"broker": publisher.ready})
        source_service = SourcesService(
            settings, publisher, topics, registry, clock, static=sources
        )
        app.include_router(source_service.router)
        if database is not None:  # after the other /v1/ routes: theirs win a tie
            app.include_router(config_router(db.sessions(database)))
        server = HttpServer(app, settings.host, settings.ingest_port)
        raw = RawConsumer(
            kafka.consumer(settings, group_id=group_id(settings.topic_prefix)),
            publisher,
            topics,
            metrics,
            clock,
        )
        raw_stop = asyncio.Event()
        tasks = [
            supervisor.spawn("ingest-http", server.serve()),
            supervisor.spawn("ingest-raw", raw.run(raw_stop)),
            supervisor.spawn("ingest-sources", source_service.run(raw_stop)),
        ]
        relay = asyncio.create_task(_relay(stop, supervisor), name="ingest-stop-relay")
        log.info("ingest running", extra={"host": settings.host, "port": settings.ingest_port})
        try:
            await supervisor.wait()
        finally:
            relay.cancel()
            deadline = loop.time() + settings.shutdown_grace_s
            supervisor.stop()
            drain.start()
            raw_stop.set()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(drain.idle(), settings.shutdown_grace_s)
            server.stop()
            _, pending = await asyncio.wait(tasks, timeout=max(deadline - loop.time(), 0.1))
            if pending:
                log.warning(
                    "shutdown grace exceeded; cancelling",
                    extra={"tasks": [t.get_name() for t in pending]},
                )
            await supervisor.cancel_all()
    finally:
        remaining = settings.shutdown_grace_s if deadline is None else deadline - loop.time()
        try:
            await asyncio.wait_for(producer.stop(), max(remaining, 0.5))
        except TimeoutError:
            log.error("producer did not flush within the shutdown grace period")
        if database is not None:
            await database.dispose()
    if supervisor.failure is not None:
        raise supervisor.failure
    log.info("ingest stopped")


def http_limits(settings: Settings) -> dict[str, Any]:
    """The :class:`IngestDeps` bounds that are settings (``docs/ingest.md``, Limits)."""
    return {
        "max_body_bytes": settings.max_body_bytes,
        "max_batch_items": settings.max_batch_items,
        "max_inflight": settings.ingest_max_inflight,
        "publish_timeout_s": settings.ingest_publish_timeout_s,
        "overload_cooldown_ms": settings.ingest_overload_cooldown_ms,
        "dedup_capacity": settings.ingest_dedup_capacity,
        "dedup_horizon_ms": settings.ingest_dedup_horizon_ms,
    }


async def _relay(stop: asyncio.Event, supervisor: Supervisor) -> None:
    await stop.wait()
    supervisor.stop()


__all__ = ["run"]
