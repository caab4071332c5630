"""LISTEN on a PostgreSQL channel for as long as a service runs.

One dedicated asyncpg connection LISTENs; each notification sets ``poke``. A lost
connection is re-opened with backoff (one warning per outage, ``shared.reconnect``);
connecting is bounded by :data:`CONNECT_TIMEOUT_S` so a frozen server cannot hold
the listener. Each (re)connect pokes once as well: notifications sent while nobody
listened are lost, so the owner reloads everything. Used by the definitions watcher
(``shared.definitions.watch``) and the API key cache (``shared.apikeys.cache``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

import asyncpg

from shared.reconnect import Backoff, Outage, is_transient

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 10.0


def plain_url(url: str) -> str:
    """asyncpg takes ``postgresql://``, not SQLAlchemy's ``postgresql+asyncpg://``."""
    return url.replace("postgresql+asyncpg://", "postgresql://")


async def listen(
    url: str, channel: str, poke: asyncio.Event, stop: asyncio.Event, what: str
) -> None:
    """Until ``stop``: keep a LISTEN on ``channel`` and set ``poke`` on each notification
    (and after each connect). ``what`` names the listener in log lines."""

    def on_notify(*_args: object) -> None:
        poke.set()

    outage = Outage(f"{what} (LISTEN connection)")
    backoff = Backoff(base_s=0.5, max_s=5.0)
    while not stop.is_set():
        try:
            connection = await asyncpg.connect(plain_url(url), timeout=CONNECT_TIMEOUT_S)
        except Exception as error:
            if not is_transient(error):
                raise
            outage.failed(error)
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), backoff.delay(outage.attempts))
            continue
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _conn, lost=lost: lost.set())
            await connection.add_listener(channel, on_notify)
            outage.recovered()
            poke.set()  # changes made while we were not listening
            waits = [asyncio.create_task(stop.wait()), asyncio.create_task(lost.wait())]
            try:
                await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
            finally:
                for wait in waits:
                    wait.cancel()
        except Exception as error:
            if not is_transient(error):
                raise
            log.warning("%s lost its connection; reconnecting", what)
        finally:
            try:
                await connection.close(timeout=CONNECT_TIMEOUT_S)
            except Exception:  # noqa: BLE001 - already lost; never hang on close
                connection.terminate()
