"""A service's dependencies, watched: the start-up wait and the readiness checks.

The same for ingest, evaluator and notifier:

- :meth:`Dependencies.wait_until_available` at start: the broker answers and the
  topics exist (the :class:`~shared.topic_guard.TopicGuard` creates them), and,
  with a database, the migrations are applied; each waits with backoff (one
  warning per outage) until it succeeds or the service is told to stop
  (:class:`shared.reconnect.Stopped`);
- :meth:`Dependencies.spawn`: the guard and the database monitor as supervised
  background tasks;
- :attr:`Dependencies.checks`: ``broker``, ``topics`` and ``database`` for
  ``/readyz``, answered from those tasks' last results (never waiting on a
  dependency).
"""

from __future__ import annotations

import asyncio

from shared import db
from shared.readiness import Check, Monitor, database_probe
from shared.reconnect import until_available
from shared.runtime import Supervisor
from shared.settings import Settings
from shared.topic_guard import OnClusterChange, TopicGuard


class Dependencies:
    """The topic guard and (with ``database``) the database monitor of one service."""

    def __init__(
        self,
        settings: Settings,
        *,
        database: bool,
        on_cluster_change: OnClusterChange | None = None,
    ) -> None:
        self._settings = settings
        self.guard = TopicGuard(settings, on_cluster_change=on_cluster_change)
        self.database: Monitor | None = None
        if database:
            self.database = Monitor(database_probe(db.database_url(settings)))

    @property
    def checks(self) -> dict[str, Check]:
        checks: dict[str, Check] = {
            "broker": self.guard.broker_check,
            "topics": self.guard.topics_check,
        }
        if self.database is not None:
            checks["database"] = self.database.check
        return checks

    async def wait_until_available(self, stop: asyncio.Event) -> None:
        """Broker and topics, then the database schema; waits as long as it takes."""
        await until_available("broker", self.guard.check_once, stop)
        if self.database is not None:
            url = db.database_url(self._settings)
            await until_available("database", lambda: db.migrate(url), stop)
            await self.database.probe_once()

    def spawn(self, supervisor: Supervisor, stop: asyncio.Event) -> None:
        supervisor.spawn("topic-guard", self.guard.run(stop))
        if self.database is not None:
            supervisor.spawn("database-probe", self.database.run(stop))
