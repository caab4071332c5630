"""Hot reload: running services learn of applied definitions within a second or two.

A dedicated asyncpg connection LISTENs on :data:`CHANGES_CHANNEL`; every
notification (coalesced over ``debounce_ms``) and every ``refresh_ms`` as a
fallback, the whole catalog is read again and handed to ``on_change`` when it
differs from the last one. A lost connection is re-opened with backoff
(``shared.pglisten``); reloads that fail keep the previous catalog.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.definitions.store import CHANGES_CHANNEL, Catalog, load_catalog
from shared.pglisten import listen

log = logging.getLogger(__name__)

OnChange = Callable[[Catalog], Awaitable[None]]


class CatalogWatcher:
    """Keeps ``current`` up to date and calls ``on_change`` with each new catalog."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        listen_url: str,
        on_change: OnChange,
        *,
        refresh_ms: int = 30_000,
        debounce_ms: int = 100,
    ) -> None:
        self._sessions = sessions
        self._listen_url = listen_url.replace("postgresql+asyncpg://", "postgresql://")
        self._on_change = on_change
        self._refresh_s = refresh_ms / 1000
        self._debounce_s = debounce_ms / 1000
        self._poke = asyncio.Event()
        self.current: Catalog | None = None

    async def load(self) -> Catalog:
        """Read the catalog now (used at start, before consuming)."""
        async with self._sessions() as session:
            catalog = await load_catalog(session)
        self.current = catalog
        return catalog

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: listen, reload on notifications and periodically."""
        listener = asyncio.create_task(self._listen(stop), name="definitions-listen")
        stopper = asyncio.create_task(self._poke_on(stop))
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), self._refresh_s)
                if stop.is_set():
                    break
                await asyncio.sleep(self._debounce_s)  # coalesce a burst of applies
                self._poke.clear()
                await self._reload()
        finally:
            for task in (listener, stopper):
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task

    async def _poke_on(self, stop: asyncio.Event) -> None:
        await stop.wait()
        self._poke.set()

    async def _reload(self) -> None:
        try:
            async with self._sessions() as session:
                catalog = await load_catalog(session)
        except Exception:
            log.exception("definitions reload failed; keeping the previous catalog")
            return
        if catalog != self.current:
            self.current = catalog
            await self._on_change(catalog)

    async def _listen(self, stop: asyncio.Event) -> None:
        await listen(self._listen_url, CHANGES_CHANNEL, self._poke, stop, "definitions listener")
