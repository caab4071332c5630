"""Wiring of the notifier: the one place that builds its parts and owns their lifetimes.

Start order: broker and topics (the topic guard creates them) → migrations →
database engine → catalog (and its NOTIFY watcher) → Kafka producer (dead letters)
and consumer → HTTP client → intake, delivery workers, catalog reload, outbox
gauge, topic guard, database probe and HTTP server under a
:class:`~shared.runtime.Supervisor`. Each step that needs PostgreSQL or the broker
waits for it with backoff (``shared.reconnect``) instead of failing.

Outages: intake and the delivery workers are restarted after a transient database
or broker error (one warning per outage); intake first rewinds the consumer to its
committed offsets, so the records of the interrupted batch are handled again
(idempotently, see ``services.notifier.intake``); a delivery interrupted between the
receiver's answer and its record is sent again after its lease, with the same
idempotency key. ``/readyz`` reports the database, the broker and the topics; the
API answers 503 problem+json while the database is away.

Stop (``stop`` set, or a task failed), one sequence (``shared.shutdown``): the
supervisor's stop event tells every loop to finish what it holds — intake its batch
and offset commit, workers their claimed deliveries — within
``settings.shutdown_grace_s``; whatever is still running then is cancelled and named
(a cancelled delivery's row is claimed again when its lease expires). Closes run
last-in-first-out, each even when one before it failed; a task's failure is
re-raised.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import random
from collections.abc import Awaitable, Callable

import httpx
import orjson
from aiokafka import AIOKafkaConsumer
from prometheus_client import CollectorRegistry
from starlette.responses import Response

from services.notifier.ackkey import ack_link_key
from services.notifier.acklink import AckLinks
from services.notifier.api import Lifecycle, create_app, problem_response
from services.notifier.breaker import CircuitBreakers
from services.notifier.catalog import CatalogCache
from services.notifier.channels import build_channels
from services.notifier.channels.destinations import Outbound, outbound_client
from services.notifier.config import NotifierSettings
from services.notifier.console import console_config, mount_console
from services.notifier.groups import GroupFlusher
from services.notifier.intake import Intake, drain_budget_s
from services.notifier.metrics import NotifierMetrics
from services.notifier.outbox import Claimed
from services.notifier.reports.gauge import refresh_liability_gauge
from services.notifier.reports.record import close_periods
from services.notifier.secrets import Secrets
from services.notifier.worker import (
    BATCH_SIZE,
    DeliveryWorker,
    Doorbell,
    WorkerConfig,
    refresh_pending_gauge,
)
from shared import db, kafka
from shared.deadletter import DeadLetter
from shared.definitions.store import Catalog
from shared.definitions.watch import CatalogWatcher
from shared.dependencies import Dependencies
from shared.http.auth import Authenticator, default_rate, key_cache
from shared.metrics import new_registry
from shared.reconnect import Stopped, describe, retrying, until_available
from shared.runtime import HttpServer, Supervisor, answer_outages
from shared.settings import Settings
from shared.shutdown import Shutdown, first_set
from shared.timeutil import Clock, wall_clock_ms
from shared.topics import Topics

log = logging.getLogger(__name__)

WORKERS = 2
GAUGE_INTERVAL_MS = 5_000


def consumer_group(settings: Settings) -> str:
    return f"{settings.topic_prefix}-notifier"


async def run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None = None,
    clock: Clock = wall_clock_ms,
    http_client: httpx.AsyncClient | None = None,
) -> None:
    """Run the notifier until ``stop`` is set or one of its tasks fails (re-raised)."""
    try:
        await _run(settings, stop, registry=registry, clock=clock, http_client=http_client)
    except Stopped:
        log.info("notifier stopped before it started")


async def _run(
    settings: Settings,
    stop: asyncio.Event,
    *,
    registry: CollectorRegistry | None,
    clock: Clock,
    http_client: httpx.AsyncClient | None,
) -> None:
    own = NotifierSettings.extend(settings)
    dependencies = Dependencies(settings, database=True)
    await dependencies.wait_until_available(stop)
    registry = registry if registry is not None else new_registry()
    metrics = NotifierMetrics(registry)
    topics = Topics.from_settings(settings)

    supervisor = Supervisor()
    async with Shutdown("notifier", settings.shutdown_grace_s) as shutdown:
        # Every worker finishes up to a batch of rows at once, each in its own session.
        engine = db.engine(settings, pool_size=WORKERS * BATCH_SIZE // 2 + 4)
        shutdown.close("database", engine.dispose)
        sessions = db.sessions(engine)
        catalog = CatalogCache(sessions, clock)
        await until_available("database", catalog.reload, stop)

        producer = await until_available("broker", lambda: kafka.start_producer(settings), stop)
        shutdown.close("producer", producer.stop)
        consumer = await until_available(
            "broker",
            lambda: _started(
                kafka.consumer(settings, topics.breaches, group_id=consumer_group(settings))
            ),
            stop,
        )
        shutdown.close("consumer", consumer.stop)

        http = http_client
        if http is None:
            # The transport checks every destination on the address it connects to.
            http = outbound_client(Outbound(settings.outbound), settings.delivery_timeout_ms / 1000)
            shutdown.close("http client", http.aclose)
        channels = build_channels(
            http,
            settings.delivery_timeout_ms,
            Secrets(os.environ, settings.secret_rules),
            clock=clock,
            outbound=Outbound(settings.outbound),
        )
        key = await until_available(
            "database", lambda: ack_link_key(sessions, own.ack_key_path), stop
        )
        links = AckLinks(key, own.public_url, own.ack_link_ttl_ms)
        breakers = CircuitBreakers(threshold=own.circuit_threshold, open_ms=own.circuit_open_ms)

        async def dead_letter(row: Claimed, channel: str, error: str) -> None:
            letter = DeadLetter.of(
                "notifier",
                "delivery_dead",
                orjson.dumps(row.payload),
                at=clock(),
                detail=f"receiver {row.receiver} ({channel}), {row.kind}: {error}"[:1000],
            )
            await producer.send_and_wait(topics.deadletter, letter.to_json(), key=letter.key)

        async def definitions_changed(_catalog: Catalog) -> None:
            await catalog.reload()

        # NOTIFY-driven reload: an applied definition reaches routing within ~0.1 s;
        # the catalog's own periodic reload stays as the fallback.
        watcher = CatalogWatcher(sessions, db.database_url(settings), definitions_changed)

        halt = supervisor.stop_requested
        doorbell = Doorbell()
        intake = Intake(
            consumer, producer, sessions, catalog, metrics, topics, clock, doorbell.ring
        )
        config = WorkerConfig.from_settings(settings, own.lease_margin_ms)
        rng = random.Random()  # noqa: S311 - jitter, not security
        workers = [
            DeliveryWorker(
                f"worker-{i}",
                sessions,
                catalog,
                channels,
                metrics,
                config,
                clock,
                rng.random,
                doorbell,
                breakers=breakers,
                links=links,
                on_dead=dead_letter,
            )
            for i in range(WORKERS)
        ]
        keys = key_cache(settings, sessions)
        await until_available("database", keys.load, stop)
        app = create_app(
            sessions,
            registry,
            dependencies.checks,
            Lifecycle(clock, links, doorbell.ring, metrics),
            auth=Authenticator(keys, default_rate=default_rate(settings)),
            metrics_auth=settings.metrics_auth,
        )
        mount_console(
            app,
            console_config(
                sessions, Lifecycle(clock, links, doorbell.ring, metrics), key, own.public_url
            ),
        )
        answer_outages(app, _unavailable)
        server = HttpServer(app, settings.host, settings.notifier_port)

        shutdown.close("background tasks", supervisor.cancel_all)
        dependencies.spawn(supervisor, halt)

        async def rewind() -> None:
            await rewind_to_committed(consumer)

        tasks = [
            supervisor.spawn(
                "intake",
                retrying(
                    "notifier intake",
                    # on a stop, read on to the end of the breaches topic (intake.drain)
                    lambda: intake.run(halt, drain_s=drain_budget_s(settings.shutdown_grace_s)),
                    halt,
                    before_restart=rewind,
                ),
            ),
            *(
                supervisor.spawn(w.name, retrying(f"notifier {w.name}", _runner(w, halt), halt))
                for w in workers
            ),
            supervisor.spawn("catalog", catalog.run(halt)),
            supervisor.spawn("definitions-watch", watcher.run(halt)),
            supervisor.spawn("api-keys", keys.run(halt)),
            supervisor.spawn(
                "groups",
                GroupFlusher(
                    sessions, clock, doorbell.ring, settings.delivery_poll_interval_ms
                ).run(halt),
            ),
            supervisor.spawn(
                "outbox-gauge", refresh_pending_gauge(sessions, metrics, halt, GAUGE_INTERVAL_MS)
            ),
            supervisor.spawn(
                "liability-gauge", refresh_liability_gauge(sessions, metrics, clock, halt)
            ),
            supervisor.spawn("reports-of-record", close_periods(sessions, clock, halt)),
        ]
        http_task = supervisor.spawn("http", server.serve())
        shutdown.close_server("http server", server, http_task)
        # The stop: intake finishes its batch and offset commit, the workers their
        # claimed deliveries (woken so they see it now); a cancelled delivery's row
        # is claimed again when its lease expires.
        shutdown.signal("supervised tasks", supervisor.stop)
        shutdown.signal("http server", server.stop)
        shutdown.signal("wake workers", doorbell.ring)
        shutdown.tasks("notifier tasks", tasks)
        log.info(
            "notifier started",
            extra={"port": settings.notifier_port, "group": consumer_group(settings)},
        )
        await first_set(stop, halt)
    log.info("notifier stopped")
    if supervisor.failure is not None:
        raise supervisor.failure
    shutdown.raise_error()


async def _started(consumer: AIOKafkaConsumer) -> AIOKafkaConsumer:
    """``consumer`` started, or stopped again when it could not start."""
    try:
        await consumer.start()
    except BaseException:
        with contextlib.suppress(Exception):
            await consumer.stop()
        raise
    return consumer


def _runner(worker: DeliveryWorker, halt: asyncio.Event) -> Callable[[], Awaitable[None]]:
    return lambda: worker.run(halt)


async def rewind_to_committed(consumer: AIOKafkaConsumer) -> None:
    """Seek every assigned partition to its committed offset (the log start when none),
    so records fetched but not committed before an outage are consumed again."""
    for tp in consumer.assignment():
        committed = await consumer.committed(tp)
        if committed is None:
            await consumer.seek_to_beginning(tp)
        else:
            consumer.seek(tp, committed)


OUTAGE_RETRY_AFTER_S = 5


def _unavailable(error: BaseException) -> Response:
    response = problem_response(
        503, "Database unavailable", f"the database cannot be reached ({describe(error)})"
    )
    response.headers["Retry-After"] = str(OUTAGE_RETRY_AFTER_S)
    return response
