"""Resolutions on the real PostgreSQL, as Alertmanager sends them: a resolution reaches
the receiver told of the opening even when a silence started in between (the outbox
knows who was told), never one that was not; a group whose alerts all resolved before
its first flush sends nothing."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.notifier.support import agreement_doc, apply_docs, receiver_doc, scalar
from tests.integration.notifier.test_grouping_flush import flushes
from tests.integration.notifier.test_lifecycle import FakeClock, Rig
from tests.unit.notifier.support import T0, RecordingServer

pytestmark = pytest.mark.integration

S = 1_000
M = 60 * S


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


@pytest.fixture
async def rig(engine: AsyncEngine, http: httpx.AsyncClient) -> AsyncIterator[Rig]:
    built = Rig(engine, http, FakeClock(T0))
    async with built.api:
        yield built


def silence(start: int, end: int) -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Silence",
        "metadata": {"name": "db-upgrade"},
        "spec": {"match": {"service": "checkout"}, "start": start, "end": end},
    }


def kinds(server: RecordingServer) -> list[str]:
    return [
        f"{orjson.loads(r.body)['id'][:1]}:{r.headers['x-slawatch-kind']}" for r in server.requests
    ]


async def test_a_resolution_passes_a_silence_to_the_receiver_told_of_the_opening(
    rig: Rig,
) -> None:
    async with RecordingServer() as hook:
        await apply_docs(
            rig.engine, receiver_doc("hook", hook.url), agreement_doc([{"receivers": ["hook"]}])
        )
        await rig.publish(id="a" * 32)
        await rig.deliver_due()
        assert kinds(hook) == ["a:breach.opened"]
        # A silence starts; a opens before it, b while it holds.
        await apply_docs(rig.engine, silence(T0 + M, T0 + 60 * M))
        rig.clock.now = T0 + 2 * M
        await rig.publish(id="b" * 32, at=T0 + 2 * M, opened_at=T0 + 2 * M)
        await rig.deliver_due()
        assert kinds(hook) == ["a:breach.opened"]
        rig.clock.now = T0 + 3 * M
        for who in "ab":
            await rig.publish(
                id=who * 32, kind="breach.resolved", at=T0 + 3 * M, resolved_at=T0 + 3 * M
            )
        await rig.deliver_due()
    # a's receiver keeps no stale open alert; b's never heard of b, so stays quiet
    assert kinds(hook) == ["a:breach.opened", "a:breach.resolved"]
    assert await _by_breach(rig) == {
        ("a", "breach.opened"): "delivered",
        ("b", "breach.opened"): "suppressed",
        ("a", "breach.resolved"): "delivered",
        ("b", "breach.resolved"): "suppressed",
    }


async def _by_breach(rig: Rig) -> dict[tuple[str, str], str]:
    raw = await scalar(
        rig.engine,
        "SELECT string_agg(left(breach_id, 1) || '/' || kind || '=' || status, ';' ORDER BY id)"
        " FROM deliveries",
    )
    out: dict[tuple[str, str], str] = {}
    for part in (raw or "").split(";"):
        key, _, status = part.partition("=")
        who, _, kind = key.partition("/")
        out[(who, kind)] = status
    return out


GROUPED = {"receivers": ["grouped"], "groupBy": ["customer"], "groupWait": "30s"}


async def test_a_group_resolved_before_its_first_flush_sends_nothing(rig: Rig) -> None:
    async with RecordingServer() as grouped:
        await apply_docs(rig.engine, receiver_doc("grouped", grouped.url), agreement_doc([GROUPED]))
        await rig.publish(id="a" * 32)
        rig.clock.now = T0 + 10 * S
        await rig.publish(
            id="a" * 32, kind="breach.resolved", at=T0 + 10 * S, resolved_at=T0 + 10 * S
        )
        await rig.deliver_due()
        rig.clock.now = T0 + 30 * S
        await rig.deliver_due()
        rig.clock.now = T0 + 10 * M
        await rig.deliver_due()
    assert grouped.requests == []
    assert await scalar(rig.engine, "SELECT count(*) FROM notification_groups") == 0
    assert await scalar(rig.engine, "SELECT count(*) FROM notification_group_flushes") == 0
    notes = await scalar(
        rig.engine, "SELECT string_agg(DISTINCT status || ': ' || last_error, ';') FROM deliveries"
    )
    assert (
        notes == f"merged: resolved before the group's first flush at {T0 + 30 * S}: nothing sent"
    )


async def test_a_grouped_resolution_passes_a_silence_when_its_firing_went_out(rig: Rig) -> None:
    async with RecordingServer() as grouped:
        await apply_docs(
            rig.engine,
            receiver_doc("grouped", grouped.url),
            agreement_doc([{**GROUPED, "groupInterval": "5m"}]),
        )
        await rig.publish(id="a" * 32)
        rig.clock.now = T0 + 30 * S
        await rig.deliver_due()
        assert flushes(grouped) == [["a:firing"]]
        await apply_docs(rig.engine, silence(T0 + M, T0 + 60 * M))
        rig.clock.now = T0 + 2 * M
        await rig.publish(id="b" * 32, at=T0 + 2 * M, opened_at=T0 + 2 * M)
        rig.clock.now = T0 + 3 * M
        for who in "ab":
            await rig.publish(
                id=who * 32, kind="breach.resolved", at=T0 + 3 * M, resolved_at=T0 + 3 * M
            )
        rig.clock.now = T0 + 5 * M + 30 * S
        await rig.deliver_due()
    # b, opened and resolved under the silence, was never sent firing: muted
    assert flushes(grouped) == [["a:firing"], ["a:resolved"]]
    assert await scalar(rig.engine, "SELECT count(*) FROM notification_groups") == 0
