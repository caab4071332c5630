"""The API keys a running service accepts, kept fresh.

:class:`KeyCache` holds the active keys by digest. It reloads them all when
:data:`shared.apikeys.store.CHANGES_CHANNEL` is notified (``shared.pglisten``) and
every ``refresh_ms`` as a fallback (a lost notification, a change made by hand), so
a revoked key stops working within ``refresh_ms`` at the latest, within moments
usually. A reload that fails keeps the previous keys (a database outage revokes
nothing, and nobody can revoke a key during one either).

Use is noted in memory and written at most every ``touch_every_ms`` per key
(``last_used_at``), not per request.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Iterable
from datetime import UTC, datetime
from typing import Protocol

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared.apikeys import store, tokens
from shared.apikeys.store import KeyEntry
from shared.pglisten import listen
from shared.reconnect import Outage
from shared.timeutil import Clock, wall_clock_ms

log = logging.getLogger(__name__)

#: Revocation takes effect within this, even without a notification.
REFRESH_MS = 1_000
TOUCH_EVERY_MS = 60_000


class KeySource(Protocol):
    """Where an authenticator looks keys up (a :class:`KeyCache`, or fixed keys)."""

    def find(self, digest: str) -> KeyEntry | None: ...

    def used(self, name: str, now_ms: int) -> None: ...


class StaticKeys:
    """A fixed set of keys (tests, and a service without a database: no key at all)."""

    def __init__(self, entries: Iterable[KeyEntry] = ()) -> None:
        self._by_digest = {e.digest: e for e in entries}
        self.last_used: dict[str, int] = {}

    def find(self, digest: str) -> KeyEntry | None:
        return _find(self._by_digest, digest)

    def used(self, name: str, now_ms: int) -> None:
        self.last_used[name] = now_ms

    def revoke(self, name: str) -> None:
        """Forget the key ``name`` (what a reload after a revocation does)."""
        self._by_digest = {d: e for d, e in self._by_digest.items() if e.name != name}


def _find(by_digest: dict[str, KeyEntry], digest: str) -> KeyEntry | None:
    entry = by_digest.get(digest)
    # The dict finds a candidate; the comparison that decides is constant-time.
    if entry is None or not tokens.same_digest(entry.digest, digest):
        return None
    return entry


class KeyCache:
    """Active keys by digest, reloaded on notification and every ``refresh_ms``."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        listen_url: str,
        *,
        refresh_ms: int = REFRESH_MS,
        touch_every_ms: int = TOUCH_EVERY_MS,
        clock: Clock = wall_clock_ms,
    ) -> None:
        self._sessions = sessions
        self._listen_url = listen_url
        self._refresh_s = refresh_ms / 1000
        self._touch_every_ms = touch_every_ms
        self._clock = clock
        self._by_digest: dict[str, KeyEntry] = {}
        self._used: dict[str, int] = {}
        self._touched_at = clock()
        self._poke = asyncio.Event()
        self._outage = Outage("API key reload")

    @property
    def names(self) -> set[str]:
        return {e.name for e in self._by_digest.values()}

    def find(self, digest: str) -> KeyEntry | None:
        return _find(self._by_digest, digest)

    def used(self, name: str, now_ms: int) -> None:
        self._used[name] = now_ms

    async def load(self) -> None:
        """Read every active key now (at start, before serving)."""
        async with self._sessions() as session:
            entries = await store.active_keys(session)
        self._by_digest = {e.digest: e for e in entries}

    async def run(self, stop: asyncio.Event) -> None:
        """Until ``stop``: listen, reload on notifications and every ``refresh_ms``,
        write last-used times every ``touch_every_ms``."""
        listener = asyncio.create_task(
            listen(self._listen_url, store.CHANGES_CHANNEL, self._poke, stop, "API key listener"),
            name="api-keys-listen",
        )
        try:
            while not stop.is_set():
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._poke.wait(), self._refresh_s)
                self._poke.clear()
                await self._reload()
                if self._clock() - self._touched_at >= self._touch_every_ms:
                    await self.flush_use()
            await self.flush_use()
        finally:
            listener.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await listener

    async def _reload(self) -> None:
        try:
            await self.load()
        except Exception as error:  # noqa: BLE001 - keep the previous keys; logged once
            self._outage.failed(error)
            return
        self._outage.recovered()

    async def flush_use(self) -> None:
        """Write the last-used times noted since the last write."""
        self._touched_at = self._clock()
        if not self._used:
            return
        used, self._used = self._used, {}
        try:
            async with self._sessions() as session, session.begin():
                await store.touch(
                    session,
                    {n: datetime.fromtimestamp(ms / 1000, UTC) for n, ms in used.items()},
                )
        except Exception:  # a last-used time is not worth failing for
            log.warning("could not record when API keys were last used", exc_info=True)
