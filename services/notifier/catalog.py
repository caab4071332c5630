"""The definitions the notifier routes and delivers by, reloaded from PostgreSQL.

Also holds the ``Silence`` and ``MaintenanceWindow`` definitions as mute windows.
Reloaded every ``interval_ms`` so newly applied definitions are seen, and on demand
when a name is missing (at most once per ``min_refresh_ms``) so a breach for an
agreement applied a moment ago is routed without waiting. A failed reload keeps the
previous catalog and is logged: readiness reports the database, not this loop.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.silencing import MuteWindow
from shared.definitions.kinds.silence import MaintenanceWindow, Silence
from shared.definitions.load import DefinitionsInvalid
from shared.definitions.model import Agreement, Receiver
from shared.definitions.store import Catalog, load_catalog
from shared.models import Definition
from shared.timeutil import Clock

log = logging.getLogger(__name__)

WINDOW_KINDS: dict[str, type[Silence] | type[MaintenanceWindow]] = {
    "Silence": Silence,
    "MaintenanceWindow": MaintenanceWindow,
}


async def load_windows(session: AsyncSession) -> list[MuteWindow]:
    """``Silence`` and ``MaintenanceWindow`` definitions as mute windows (a document that
    no longer validates is skipped and logged)."""
    rows = await session.execute(
        select(Definition.kind, Definition.name, Definition.document).where(
            Definition.kind.in_(WINDOW_KINDS)
        )
    )
    windows: list[MuteWindow] = []
    for kind, name, document in rows:
        try:
            doc = WINDOW_KINDS[kind].model_validate(document)
        except ValidationError as exc:
            log.warning("skipping invalid %s/%s: %s", kind, name, exc.error_count())
            continue
        windows.append(
            MuteWindow(f"{kind}/{name}", dict(doc.spec.match), doc.spec.start, doc.spec.end)
        )
    return windows


RELOAD_INTERVAL_MS = 5_000
MIN_REFRESH_MS = 1_000


class CatalogCache:
    """The current :class:`Catalog`, with periodic and on-miss reloads."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        clock: Clock,
        *,
        min_refresh_ms: int = MIN_REFRESH_MS,
    ) -> None:
        self._sessions = sessions
        self._clock = clock
        self._min_refresh_ms = min_refresh_ms
        self._loaded_at: int | None = None
        self._lock = asyncio.Lock()
        self.current = Catalog(agreements={}, receivers={})
        self.windows: list[MuteWindow] = []

    async def reload(self) -> None:
        """Load every definition; raises on database errors."""
        async with self._lock:
            async with self._sessions() as session:
                catalog = await load_catalog(session)
                windows = await load_windows(session)
            self.current = catalog
            self.windows = windows
            self._loaded_at = self._clock()

    async def _refresh_on_miss(self) -> None:
        now = self._clock()
        if self._loaded_at is not None and now - self._loaded_at < self._min_refresh_ms:
            return
        try:
            await self.reload()
        except (SQLAlchemyError, OSError, DefinitionsInvalid) as exc:
            log.warning("catalog reload failed: %s", exc)

    async def agreement(self, name: str) -> Agreement | None:
        found = self.current.agreements.get(name)
        if found is None:
            await self._refresh_on_miss()
            found = self.current.agreements.get(name)
        return found

    async def receiver(self, name: str) -> Receiver | None:
        found = self.current.receivers.get(name)
        if found is None:
            await self._refresh_on_miss()
            found = self.current.receivers.get(name)
        return found

    async def run(self, stop: asyncio.Event, interval_ms: int = RELOAD_INTERVAL_MS) -> None:
        """Reload every ``interval_ms`` until ``stop``."""
        while not stop.is_set():
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), interval_ms / 1000)
            if stop.is_set():
                return
            try:
                await self.reload()
            except (SQLAlchemyError, OSError, DefinitionsInvalid) as exc:
                log.warning("catalog reload failed; keeping the previous one: %s", exc)
