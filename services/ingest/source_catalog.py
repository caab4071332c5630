"""Source definitions from the database, hot-reloaded.

:func:`load_sources` reads every stored ``Source`` document (one that no longer
validates is logged and skipped, the others go on). :class:`SourceWatcher` reuses
:class:`shared.definitions.watch.CatalogWatcher`'s LISTEN/refresh machinery and
replaces what is reloaded: the Source documents instead of the catalog of
agreements and receivers (which does not carry sources).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.definitions.kinds.source import Source, SourceSpec
from shared.definitions.watch import CatalogWatcher
from shared.models import Definition

log = logging.getLogger(__name__)

KIND = "Source"
OnSources = Callable[[dict[str, SourceSpec]], Awaitable[None]]


async def load_sources(session: AsyncSession) -> dict[str, SourceSpec]:
    rows = (await session.execute(select(Definition).where(Definition.kind == KIND))).scalars()
    sources: dict[str, SourceSpec] = {}
    for row in rows:
        try:
            source = Source.model_validate(row.document)
        except ValidationError as exc:
            log.error("stored Source %s is invalid; skipped: %s", row.name, exc)
            continue
        sources[source.metadata.name] = source.spec
    return sources


class SourceWatcher(CatalogWatcher):
    """Calls ``on_sources`` with every changed set of Source definitions."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        listen_url: str,
        on_sources: OnSources,
        *,
        refresh_ms: int = 30_000,
        debounce_ms: int = 100,
    ) -> None:
        async def unused(_catalog: object) -> None:
            return None

        super().__init__(
            sessions, listen_url, unused, refresh_ms=refresh_ms, debounce_ms=debounce_ms
        )
        self._source_sessions = sessions
        self._on_sources = on_sources
        self.sources: dict[str, SourceSpec] | None = None

    async def load_sources(self) -> dict[str, SourceSpec]:
        async with self._source_sessions() as session:
            self.sources = await load_sources(session)
        return self.sources

    async def _reload(self) -> None:
        try:
            sources = await self.load_sources_quietly()
        except Exception:
            log.exception("source definitions reload failed; keeping the previous ones")
            return
        if sources is not None:
            await self._on_sources(sources)

    async def load_sources_quietly(self) -> dict[str, SourceSpec] | None:
        """The new set, or None when unchanged."""
        previous = self.sources
        current = await self.load_sources()
        return None if current == previous else current
