"""Wiring of the evaluator service, in one place.

Start: broker and topics (the topic guard creates them), migrations, the catalog
from PostgreSQL, the producer (each waited for with backoff while unavailable,
``shared.reconnect``), then the consumer loop, the HTTP server, the definitions
watcher (hot reload, :meth:`EvaluatorConsumer.reload`), the topic guard and the
database probe (``/readyz``: broker, topics, database; ``shared.dependencies``; and the
consumer: partitions assigned and restored, checkpoints taken)
under a Supervisor. Stop (the caller's ``stop`` event, or a failed task), one
sequence (``shared.shutdown``): the HTTP server is told to exit and the consumer
loop finishes its in-flight batch, checkpoints every owned partition, commits and
leaves the group, all within ``shutdown_grace_s`` (what is late is cancelled and
named); then the HTTP server's socket, the producer, the engine and the database
pool are closed, last in first out. A task's failure is re-raised.
"""

from __future__ import annotations

import asyncio
import gc
import logging
from collections.abc import Callable

from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.evaluator.api import create_app
from services.evaluator.checkpoint import CheckpointStore
from services.evaluator.consumer import EvaluatorConsumer, consumer_group
from services.evaluator.engine import Engine
from services.evaluator.metrics import EvaluatorMetrics
from services.evaluator.objectives import compile_catalog
from services.evaluator.objectives.base import CompiledObjective
from shared import db, kafka
from shared.definitions.store import Catalog, load_catalog
from shared.definitions.watch import CatalogWatcher
from shared.dependencies import Dependencies
from shared.http.auth import Authenticator, default_rate, key_cache
from shared.metrics import new_registry
from shared.reconnect import Stopped, until_available
from shared.runtime import HttpServer, Supervisor
from shared.settings import Settings
from shared.shutdown import Shutdown, first_set
from shared.timeutil import Clock, wall_clock_ms
from shared.topics import Topics

log = logging.getLogger(__name__)

HTTP_STOP_S = 2.0


def compile_objectives(
    catalog: Catalog, settings: Settings, clock: Clock
) -> list[CompiledObjective]:
    """The catalog's objectives under the configured limits (start and hot reload)."""
    return list(
        compile_catalog(
            catalog,
            clock,
            max_groups=settings.evaluator_max_groups,
            max_open_entities=settings.evaluator_max_open_entities,
        )
    )


def new_engine(catalog: Catalog, settings: Settings, clock: Clock) -> Engine:
    """An engine over ``catalog`` with the configured lateness, dedup horizon and limits."""
    return Engine(
        compile_objectives(catalog, settings, clock),
        allowed_lateness_ms=settings.allowed_lateness_ms,
        dedup_horizon_ms=settings.dedup_horizon_ms,
        clock=clock,
        max_future_skew_ms=settings.max_future_skew_ms,
        events_partitions=settings.events_partitions,
    )


async def build_engine(
    database: AsyncEngine, settings: Settings, clock: Clock, catalog: Catalog | None = None
) -> Engine:
    """Compile every objective stored in PostgreSQL (or of ``catalog``)."""
    if catalog is None:
        async with db.sessions(database)() as session:
            catalog = await load_catalog(session)
    engine = new_engine(catalog, settings, clock)
    log.info("objectives loaded", extra={"objectives": sorted(engine.objectives)})
    return engine


async def run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None = None,
    clock: Clock = wall_clock_ms,
) -> None:
    """Run the evaluator until ``stop`` is set; re-raise the failure of any task."""
    try:
        await _run(settings, stop, registry=registry, clock=clock)
    except Stopped:
        log.info("evaluator stopped before it started")


async def _run(
    settings: Settings, stop: asyncio.Event, *, registry: CollectorRegistry | None, clock: Clock
) -> None:
    registry = registry if registry is not None else new_registry()
    # Broker, topics and schema: waited for with backoff, not a reason to exit.
    dependencies = Dependencies(settings, database=True)
    await dependencies.wait_until_available(stop)
    supervisor = Supervisor()
    async with Shutdown("evaluator", settings.shutdown_grace_s) as shutdown:
        database = db.engine(settings)
        shutdown.close("database", database.dispose)

        async def load() -> Catalog:
            async with db.sessions(database)() as session:
                return await load_catalog(session)

        catalog = await until_available("database", load, stop)
        engine = await build_engine(database, settings, clock, catalog)
        shutdown.close("engine", engine.close)
        shutdown.close("gc thresholds", _collect_garbage_rarely())
        producer = await until_available("broker", lambda: kafka.start_producer(settings), stop)
        shutdown.close("producer", producer.stop)

        metrics = EvaluatorMetrics(registry, settings.metrics_max_groups)
        topics = Topics.from_settings(settings)
        store = CheckpointStore(db.sessions(database), consumer_group(settings), topics.events)
        consumer = EvaluatorConsumer(settings, engine, store, producer, metrics, clock)

        async def definitions_changed(catalog: Catalog) -> None:
            try:
                compiled = compile_objectives(catalog, settings, clock)
            except ValueError:
                log.exception("reloaded definitions do not compile; keeping the current ones")
                return
            await consumer.reload(compiled)

        watcher = CatalogWatcher(
            db.sessions(database), db.database_url(settings), definitions_changed
        )
        watcher.current = catalog

        keys = key_cache(settings, db.sessions(database))
        await until_available("database", keys.load, stop)
        auth = Authenticator(keys, default_rate=default_rate(settings))
        checks = {**dependencies.checks, "consumer": consumer.ready}
        app = create_app(engine, registry, checks, auth=auth, metrics_auth=settings.metrics_auth)
        http = HttpServer(app, settings.host, settings.evaluator_port)

        shutdown.close("background tasks", supervisor.cancel_all)
        dependencies.spawn(supervisor, supervisor.stop_requested)
        consumer_task = supervisor.spawn(
            "evaluator-consumer", consumer.run(supervisor.stop_requested)
        )
        http_task = supervisor.spawn("evaluator-http", http.serve())
        # Also after an abort (run() cancelled: the consumer is then cancelled without
        # a checkpoint, as in a crash, and the next owner replays from the last one),
        # the HTTP server still closes its socket.
        shutdown.close_server("http server", http, http_task, within_s=HTTP_STOP_S)
        watch_task = supervisor.spawn(
            "evaluator-definitions", watcher.run(supervisor.stop_requested)
        )
        keys_task = supervisor.spawn("evaluator-api-keys", keys.run(supervisor.stop_requested))
        # The stop: the consumer finishes its batch, checkpoints every owned partition,
        # commits and leaves the group.
        shutdown.signal("supervised tasks", supervisor.stop)
        shutdown.signal("http server", http.stop)
        shutdown.tasks("evaluator tasks", [consumer_task, watch_task, keys_task])
        await first_set(stop, supervisor.stop_requested)
    if supervisor.failure is not None:
        raise supervisor.failure
    shutdown.raise_error()


#: Allocations between two young-generation collections (CPython's default: 700).
GC_YOUNG_THRESHOLD = 50_000


def _collect_garbage_rarely() -> Callable[[], None]:
    """Fewer cyclic-GC passes while consuming; returns what restores the defaults.

    Each record allocates a handful of short-lived objects and hardly ever a cycle,
    while the windows and groups live long: with the default threshold the collector
    runs every ~100 records and rescans the young state each time. What exists at
    start (modules, compiled objectives) is frozen out of the scans altogether.
    """
    before = gc.get_threshold()
    gc.freeze()
    gc.set_threshold(GC_YOUNG_THRESHOLD, *before[1:])

    def restore() -> None:
        gc.set_threshold(*before)
        gc.unfreeze()

    return restore
