"""Grouped routes on the real PostgreSQL with a fake clock: group_wait, group_interval
ticks, repeat_interval reminders, resolution, group end (grouping.py's semantics)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.integration.notifier.support import agreement_doc, apply_docs, receiver_doc, scalar
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


def sent(server: RecordingServer) -> list[str]:
    """``<breach id prefix>:<kind>`` of every request, in arrival order."""
    return [
        f"{r.headers['idempotency-key'][:1]}:{r.headers['x-slawatch-kind']}"
        for r in server.requests
    ]


async def test_group_timing_reminders_and_end(rig: Rig) -> None:
    async with RecordingServer() as grouped, RecordingServer() as direct:
        await apply_docs(
            rig.engine,
            receiver_doc("grouped", grouped.url),
            receiver_doc("direct", direct.url),
            agreement_doc(
                [
                    {
                        "receivers": ["grouped"],
                        "groupBy": ["customer"],
                        "groupWait": "30s",
                        "groupInterval": "5m",
                        "repeatInterval": "1h",
                        "continue": True,
                    },
                    {"receivers": ["direct"]},
                ]
            ),
        )

        async def at(t: int) -> None:
            rig.clock.now = T0 + t
            await rig.deliver_due()

        await rig.publish(id="a" * 32)  # group created, first flush at 30s
        await at(0)
        assert sent(direct) == ["a:breach.opened"]  # an ungrouped route: at once
        assert sent(grouped) == []
        await at(10 * S)
        await rig.publish(id="b" * 32, at=T0 + 10 * S)
        await at(29 * S)
        assert sent(grouped) == []
        await at(30 * S)
        assert sorted(sent(grouped)) == ["a:breach.opened", "b:breach.opened"]
        await at(2 * M)
        await rig.publish(id="c" * 32, at=T0 + 2 * M)
        await at(5 * M + 29 * S)
        assert len(grouped.requests) == 2  # waits for the tick
        await at(5 * M + 30 * S)
        assert sent(grouped)[2:] == ["c:breach.opened"]
        # Nothing changes: a reminder on the first tick at or after last send + 1h.
        await at(65 * M + 29 * S)
        assert len(grouped.requests) == 3
        await at(65 * M + 30 * S)
        assert sorted(sent(grouped)[3:]) == ["a:repeat.1", "b:repeat.1", "c:repeat.1"]
        # Resolutions go out on the next tick; when all are resolved the group ends.
        for i, who in enumerate("abc"):
            await rig.publish(
                id=who * 32, kind="breach.resolved", at=T0 + 66 * M + i, resolved_at=T0 + 66 * M
            )
        await at(66 * M)
        assert len(grouped.requests) == 6
        await at(70 * M + 30 * S)
        assert sorted(sent(grouped)[6:]) == [
            "a:breach.resolved",
            "b:breach.resolved",
            "c:breach.resolved",
        ]
    assert await scalar(rig.engine, "SELECT count(*) FROM notification_groups") == 0
    assert sorted(sent(direct)) == sorted(
        [f"{w}:breach.opened" for w in "abc"] + [f"{w}:breach.resolved" for w in "abc"]
    )


async def test_ack_of_a_grouped_breach_goes_out_with_the_next_flush(rig: Rig) -> None:
    async with RecordingServer() as grouped:
        await apply_docs(
            rig.engine,
            receiver_doc("grouped", grouped.url),
            agreement_doc(
                [{"receivers": ["grouped"], "groupBy": ["customer"], "groupWait": "30s"}]
            ),
        )
        await rig.publish(id="a" * 32)
        rig.clock.now = T0 + 30 * S
        await rig.deliver_due()
        rig.clock.now = T0 + 1 * M
        answer = await rig.api.post(f"/v1/breaches/{'a' * 32}/ack", json={"by": "ana"})
        assert answer.status_code == 200
        await rig.deliver_due()
        assert sent(grouped) == ["a:breach.opened"]
        rig.clock.now = T0 + 5 * M + 30 * S
        await rig.deliver_due()
    assert sent(grouped) == ["a:breach.opened", "a:breach.acknowledged"]
