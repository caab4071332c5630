"""`slawatch up` supervises: a child that dies is started again and the stack serves on.

The stack and its helpers are tests/e2e/test_stack.py's (imported, not copied)."""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
from collections.abc import Awaitable, Callable

import httpx
import pytest

from services.stack import Stack
from tests.e2e.test_stack import events, inbox, post, stack  # noqa: F401 - fixtures
from tests.keys import bearer

pytestmark = pytest.mark.e2e

STATUS = "/v1/objectives/acme-checkout/availability/status"
DEADLINE_S = 45.0


async def until(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    """Poll ``probe`` until true; fail with ``what`` after the deadline."""
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not await probe():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {DEADLINE_S:.0f} s: {what}") from None


async def counts(client: httpx.AsyncClient, running: Stack) -> tuple[int, int] | None:
    """(good, valid) over every group, or None while the evaluator does not answer."""
    with contextlib.suppress(httpx.HTTPError):
        response = await client.get(f"{running.url('evaluator')}{STATUS}")
        if response.status_code == 200:
            groups = response.json()["groups"]
            return sum(g["good"] for g in groups), sum(g["valid"] for g in groups)
    return None


async def ready(client: httpx.AsyncClient, url: str) -> bool:
    with contextlib.suppress(httpx.HTTPError):
        return (await client.get(f"{url}/readyz")).status_code == 200
    return False


async def test_a_killed_evaluator_is_restarted_and_evaluates_again(stack: Stack) -> None:  # noqa: F811
    ingest = f"{stack.url('ingest')}/v1/events"
    async with httpx.AsyncClient(timeout=5, headers=bearer(stack.admin_key)) as client:

        async def evaluated(good: int, valid: int) -> bool:
            return await counts(client, stack) == (good, valid)

        await post(client, ingest, events("good", 20, 0))
        await until(lambda: evaluated(20, 20), "20 events evaluated before the kill")

        killed = stack.services["evaluator"]
        os.kill(killed.process.pid, signal.SIGKILL)

        async def restarted() -> bool:
            current = stack.services["evaluator"]
            return current is not killed and await ready(client, stack.url("evaluator"))

        await until(restarted, "the evaluator back and ready")
        assert killed.process.returncode == -signal.SIGKILL
        assert stack.restarts["evaluator"] == 1
        assert all(stack.restarts[name] == 0 for name in ("ingest", "notifier"))

        await post(client, ingest, events("good", 5, 20))
        await post(client, ingest, events("bad", 3, 0))
        # Exactly once: the restarted evaluator resumed from its checkpoint, so the
        # events before the kill are neither lost nor counted twice.
        await until(lambda: evaluated(25, 28), "the events after the restart evaluated")
        assert await counts(client, stack) == (25, 28)
