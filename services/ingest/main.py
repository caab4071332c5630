"""Wiring of the ingest service, supervision and graceful shutdown.

Start: broker and topics there (the topic guard creates them), migrations applied,
producer started, each waited for with backoff (``shared.dependencies``) → raw
consumer task, source runners (``services.ingest.source_service``), HTTP server
task, topic guard and database probe under a :class:`shared.runtime.Supervisor`.

Outages (``shared.reconnect``): the raw path and the sources are restarted after a
broker or database outage; publishing into a topic the guard found missing is
refused (503 with Retry-After) until it is recreated; the configuration API answers
503 problem+json while the database is away; ``/readyz`` says which is down.

Stop (``stop`` set, or a task failed), one sequence (``shared.shutdown``) within
``settings.shutdown_grace_s``:

1. the HTTP intake stops accepting (new requests are answered 503 with
   ``Retry-After``, ``/readyz`` turns 503) and the requests already admitted finish
   (each awaits its acknowledgements); then the HTTP server stops. Meanwhile the raw
   loop and the sources finish their batch and commit;
2. whatever has not finished by the deadline is cancelled, named in one warning;
3. closes, last opened first: the HTTP server's socket, the other supervised tasks,
   the producer (its flush bounded by the remaining grace time), the database pool.

A task failure is re-raised once everything is stopped.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping
from typing import Any

from prometheus_client import CollectorRegistry
from starlette.responses import Response

from services.ingest.api import IngestDeps, create_app
from services.ingest.backpressure import Drain
from services.ingest.config import config_router
from services.ingest.config.problems import problem
from services.ingest.exceptions import PublishError
from services.ingest.metrics import IngestMetrics
from services.ingest.publisher import KafkaPublisher
from services.ingest.raw_consumer import RawConsumer, group_id
from services.ingest.source_service import SourcesService
from shared import db, kafka
from shared.apikeys.cache import StaticKeys
from shared.definitions.kinds.source import SourceSpec
from shared.dependencies import Dependencies
from shared.http.auth import Authenticator, default_rate, key_cache
from shared.metrics import new_registry
from shared.reconnect import Stopped, describe, is_transient, retrying, until_available
from shared.runtime import HttpServer, Supervisor, answer_outages
from shared.settings import Settings
from shared.shutdown import Shutdown, first_set
from shared.timeutil import Clock, wall_clock_ms
from shared.topics import Topics

log = logging.getLogger(__name__)

#: What a 503 during a database outage asks clients to wait.
OUTAGE_RETRY_AFTER_S = 5
#: The producer's flush gets at least this long, even when the grace is used up.
PRODUCER_FLUSH_FLOOR_S = 0.5


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
    try:
        await _run(
            settings,
            stop,
            registry=registry,
            clock=clock,
            http_options=http_options,
            sources=sources,
        )
    except Stopped:
        log.info("ingest stopped before it started")
        return
    log.info("ingest stopped")


async def _run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None,
    clock: Clock,
    http_options: Mapping[str, Any] | None,
    sources: Mapping[str, SourceSpec] | None,
) -> None:
    registry = registry if registry is not None else new_registry()
    metrics = IngestMetrics(registry)
    topics = Topics.from_settings(settings)
    # Ingest needs the topics and, with a database, reads definitions from it.
    dependencies = Dependencies(settings, database=bool(settings.database_url))
    await dependencies.wait_until_available(stop)
    supervisor = Supervisor()
    async with Shutdown("ingest", settings.shutdown_grace_s) as shutdown:
        # With a database, ingest also serves the configuration API (/v1/agreements, ...).
        database = db.engine(settings, pool_size=2) if settings.database_url else None
        if database is not None:
            shutdown.close("database", database.dispose)
        producer = await until_available("broker", lambda: kafka.start_producer(settings), stop)
        # The flush is bounded by what is left of the grace (at least a moment).
        shutdown.close("producer", producer.stop, floor_s=PRODUCER_FLUSH_FLOOR_S)
        guard = dependencies.guard
        publisher = KafkaPublisher(producer, gate=guard, partitions=guard.wanted)
        drain = Drain()
        deps = IngestDeps(
            publisher=publisher,
            topics=topics,
            metrics=metrics,
            clock=clock,
            drain=drain,
            **{**http_limits(settings), **(http_options or {})},
        )
        keys = key_cache(settings, db.sessions(database)) if database is not None else None
        if keys is not None:
            await until_available("database", keys.load, stop)
        else:
            log.warning("no database: no API key can be checked, every request is refused")
        auth = Authenticator(keys or StaticKeys(), default_rate=default_rate(settings))
        app = create_app(
            deps, registry, dependencies.checks, auth=auth, metrics_auth=settings.metrics_auth
        )
        answer_outages(app, _unavailable)
        source_service = SourcesService(
            settings, publisher, topics, registry, clock, static=sources
        )
        app.include_router(source_service.router)
        if database is not None:  # after the other /v1/ routes: theirs win a tie
            app.include_router(config_router(db.sessions(database)))
        server = HttpServer(app, settings.host, settings.ingest_port)

        async def raw_loop() -> None:
            # A fresh consumer per (re)start, stopped even when it could not start.
            consumer = kafka.consumer(settings, group_id=group_id(settings.topic_prefix))
            try:
                await RawConsumer(
                    consumer,
                    publisher,
                    topics,
                    metrics,
                    clock,
                    max_future_skew_ms=settings.max_future_skew_ms,
                ).run(raw_stop)
            finally:
                await consumer.stop()

        raw_stop = asyncio.Event()
        shutdown.close("background tasks", supervisor.cancel_all)
        # The raw path and the sources fail a batch the broker did not take
        # (PublishError): an outage, after which they consume it again.
        http_task = supervisor.spawn("ingest-http", server.serve())
        shutdown.close_server("http server", server, http_task)
        tasks = [
            supervisor.spawn(
                "ingest-raw",
                retrying(
                    "ingest raw path",
                    raw_loop,
                    raw_stop,
                    transient=_outage,
                ),
            ),
            supervisor.spawn(
                "ingest-sources",
                retrying(
                    "ingest sources",
                    lambda: source_service.run(raw_stop),
                    raw_stop,
                    transient=_outage,
                ),
            ),
        ]
        if keys is not None:
            tasks.append(supervisor.spawn("ingest-api-keys", keys.run(supervisor.stop_requested)))
        dependencies.spawn(supervisor, supervisor.stop_requested)
        # The stop: intake closed (503 + Retry-After, /readyz 503) and the raw loop
        # told to finish its batch and commit; the admitted requests finish (each
        # awaits its acknowledgements); only then the HTTP server stops.
        shutdown.signal("supervised tasks", supervisor.stop)
        shutdown.signal("http intake", drain.start)
        shutdown.signal("raw path and sources", raw_stop.set)
        shutdown.wait("in-flight requests", drain.idle)
        shutdown.signal("http server", server.stop)
        shutdown.tasks("ingest tasks", tasks)
        log.info("ingest running", extra={"host": settings.host, "port": settings.ingest_port})
        await first_set(stop, supervisor.stop_requested)
    if supervisor.failure is not None:
        raise supervisor.failure
    shutdown.raise_error()


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
        "max_future_skew_ms": settings.max_future_skew_ms,
    }


def _outage(error: BaseException) -> bool:
    return isinstance(error, PublishError) or is_transient(error)


def _unavailable(error: BaseException) -> Response:
    """The configuration API while the database is away: 503, not 500."""
    return problem(
        503,
        "unavailable",
        "Database unavailable",
        f"the database cannot be reached ({describe(error)}); retry shortly",
        headers={"Retry-After": str(OUTAGE_RETRY_AFTER_S)},
    )


__all__ = ["run"]
