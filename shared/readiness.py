"""Readiness that tells the truth, and answers within a second in every state.

One probe implementation for every service:

- a *check* is an async callable answering ``bool`` or a :class:`CheckResult`
  (raising means not ready, the exception is the reason);
- :func:`run_checks` runs checks concurrently, each bounded by ``timeout_s``; a
  check still running at the bound is reported ``timeout after 0.8 s`` and is left
  to finish on its own: it is cancelled, but never awaited (the cleanup of a
  connection to a frozen server can hang);
- a dependency is never probed from the endpoint: a :class:`Monitor` probes it in
  the background every ``interval_s`` and its :meth:`Monitor.check` answers from
  the last result (stale results count as not ready). The broker and the topics
  are watched by :class:`shared.topic_guard.TopicGuard` the same way.

``/readyz`` (``shared.runtime.ops_router``) answers::

    200 {"ready": true,  "checks": {"database": {"ok": true}, ...}}
    503 {"ready": false, "checks": {"database": {"ok": false,
                                                 "reason": "timeout after 0.8 s"}, ...}}
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

import asyncpg

from shared.reconnect import describe

CHECK_TIMEOUT_S = 0.8
PROBE_INTERVAL_S = 1.0


@dataclass(frozen=True)
class CheckResult:
    """One dependency's verdict; ``reason`` says why it is not ready."""

    ok: bool
    reason: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {"ok": True} if self.ok else {"ok": False, "reason": self.reason or "not ready"}


Check = Callable[[], Awaitable["bool | CheckResult"]]

NOT_PROBED = CheckResult(False, "not probed yet")


def _verdict(task: asyncio.Task[bool | CheckResult]) -> CheckResult:
    if task.cancelled():
        return CheckResult(False, "cancelled")
    error = task.exception()
    if error is not None:
        return CheckResult(False, describe(error))
    outcome = task.result()
    if isinstance(outcome, CheckResult):
        return outcome
    return CheckResult(True) if outcome else CheckResult(False, "not ready")


def _forget(task: asyncio.Task[Any]) -> None:
    if not task.cancelled():
        task.exception()  # retrieved: a late failure of an abandoned check is not an error


async def run_checks(
    checks: Mapping[str, Check], timeout_s: float = CHECK_TIMEOUT_S
) -> dict[str, CheckResult]:
    """Every check at once, each bounded by ``timeout_s`` (see the module docstring)."""

    async def call(check: Check) -> bool | CheckResult:
        return await check()

    tasks = {name: asyncio.ensure_future(call(check)) for name, check in checks.items()}
    if tasks:
        await asyncio.wait(tasks.values(), timeout=timeout_s)
    results: dict[str, CheckResult] = {}
    for name, task in tasks.items():
        if task.done():
            results[name] = _verdict(task)
        else:
            task.add_done_callback(_forget)
            task.cancel()
            results[name] = CheckResult(False, f"timeout after {timeout_s:g} s")
    return results


def report(results: Mapping[str, CheckResult]) -> tuple[bool, dict[str, Any]]:
    """Whether all are ready, and the ``/readyz`` body."""
    ready = all(r.ok for r in results.values())
    return ready, {"ready": ready, "checks": {n: r.to_json() for n, r in results.items()}}


class Monitor:
    """Probes one dependency in the background; :meth:`check` answers from the cache.

    A probe runs every ``interval_s``, bounded by ``timeout_s``; a result older than
    ``stale_after_s`` (the monitor itself stuck or stopped) is not ready. A probe that
    overruns is abandoned, and no second one starts while it still runs (a frozen
    server must not pile up connections)."""

    def __init__(
        self,
        probe: Check,
        *,
        interval_s: float = PROBE_INTERVAL_S,
        timeout_s: float = CHECK_TIMEOUT_S,
        stale_after_s: float | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._probe = probe
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._stale_after_s = stale_after_s if stale_after_s is not None else 3 * interval_s + 2
        self._clock = clock
        self._last = NOT_PROBED
        self._at: float | None = None
        self._running: asyncio.Task[bool | CheckResult] | None = None

    @property
    def last(self) -> CheckResult:
        return self._last

    async def probe_once(self) -> CheckResult:
        """Probe now (or report the overrunning probe still in flight) and cache it."""
        if self._running is not None and not self._running.done():
            result = CheckResult(False, "previous probe still hanging")
        else:
            probe = self._probe

            async def call() -> bool | CheckResult:
                return await probe()

            self._running = asyncio.ensure_future(call())
            await asyncio.wait([self._running], timeout=self._timeout_s)
            if self._running.done():
                result = _verdict(self._running)
            else:
                self._running.add_done_callback(_forget)
                self._running.cancel()
                result = CheckResult(False, f"timeout after {self._timeout_s:g} s")
        self._last, self._at = result, self._clock()
        return result

    async def run(self, stop: asyncio.Event) -> None:
        """Probe every ``interval_s`` until ``stop``."""
        while not stop.is_set():
            await self.probe_once()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(stop.wait(), self._interval_s)
        if self._running is not None and not self._running.done():
            self._running.cancel()

    async def check(self) -> CheckResult:
        """The last result, unless it is stale."""
        if self._at is not None and self._clock() - self._at > self._stale_after_s:
            return CheckResult(False, f"no probe for {self._clock() - self._at:.0f} s")
        return self._last


def database_probe(url: str, timeout_s: float = CHECK_TIMEOUT_S) -> Check:
    """``SELECT 1`` on a fresh connection (a frozen postmaster takes no new connections
    even while pooled ones still work), every step bounded by ``timeout_s``."""
    dsn = url.replace("postgresql+asyncpg://", "postgresql://")

    async def probe() -> CheckResult:
        connection = await asyncpg.connect(dsn, timeout=timeout_s)
        try:
            await connection.fetchval("SELECT 1", timeout=timeout_s)
        finally:
            try:
                await connection.close(timeout=timeout_s)
            except Exception:  # noqa: BLE001 - the answer is known; never hang on close
                connection.terminate()
        return CheckResult(True)

    return probe
