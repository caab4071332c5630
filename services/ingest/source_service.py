"""Wiring of the source runners: where the definitions come from, and the API.

With a database (``settings.database_url``) the Source definitions are read from it
at start and hot-reloaded (``services.ingest.source_catalog.SourceWatcher``);
``static`` definitions (tests, benchmarks) are used instead when given. Without
either, no source runs and ``GET /v1/sources`` is empty.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Mapping

from prometheus_client import CollectorRegistry

from services.ingest.publisher import Publisher
from services.ingest.source_api import sources_router
from services.ingest.source_catalog import SourceWatcher
from services.ingest.sources import SourceManager, SourceMetrics, SourceRunner, group_id
from shared import db, kafka
from shared.definitions.kinds.source import SourceSpec
from shared.settings import Settings
from shared.timeutil import Clock
from shared.topics import Topics

log = logging.getLogger(__name__)


class SourcesService:
    """The manager, its router, and the task that feeds it definitions."""

    def __init__(
        self,
        settings: Settings,
        publisher: Publisher,
        topics: Topics,
        registry: CollectorRegistry,
        clock: Clock,
        *,
        static: Mapping[str, SourceSpec] | None = None,
    ) -> None:
        self._settings = settings
        self._static = static
        metrics = SourceMetrics(registry)

        def runner(name: str, spec: SourceSpec) -> SourceRunner:
            consumer = kafka.consumer(settings, group_id=group_id(settings.topic_prefix, name))
            return SourceRunner(
                name,
                spec,
                consumer,
                publisher,
                topics,
                metrics,
                clock,
                max_future_skew_ms=settings.max_future_skew_ms,
            )

        self.manager = SourceManager(
            runner,
            stop_grace_s=settings.shutdown_grace_s,
            forbidden_topics=frozenset((topics.events, topics.deadletter, topics.breaches)),
        )
        self.router = sources_router(self.manager)

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: runners up to date with the definitions; a failure is raised."""
        if self._static is not None:
            await self.manager.apply(self._static)
            await self.manager.run(stop)
            return
        if not self._settings.database_url:
            await self.manager.run(stop)
            return
        engine = db.engine(self._settings, pool_size=1)
        try:
            watcher = SourceWatcher(
                db.sessions(engine), db.database_url(self._settings), self.manager.apply
            )
            await self.manager.apply(await watcher.load_sources())
            watching = asyncio.create_task(watcher.run(stop), name="ingest-sources-watch")
            watching.add_done_callback(_log_failure)
            try:
                await self.manager.run(stop)
            finally:
                watching.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await watching
        finally:
            await engine.dispose()


def _log_failure(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("source definitions watcher failed", exc_info=task.exception())
