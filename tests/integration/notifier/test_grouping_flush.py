"""Grouped routes on the real PostgreSQL with a fake clock: group_wait, group_interval
ticks, repeat_interval reminders, resolution, group end (grouping.py's semantics), and
one message per (group, receiver, flush) listing every alert of the group."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
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


def flushes(server: RecordingServer) -> list[list[str]]:
    """Per request (each a group flush), ``<breach id prefix>:<status>`` of its alerts."""
    out = []
    for r in server.requests:
        assert r.headers["x-slawatch-kind"] == "group.flush"
        body: dict[str, Any] = orjson.loads(r.body)
        out.append(sorted(f"{a['fingerprint'][:1]}:{a['status']}" for a in body["alerts"]))
    return out


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
        assert flushes(grouped) == []
        await at(10 * S)
        await rig.publish(id="b" * 32, at=T0 + 10 * S)
        await at(29 * S)
        assert flushes(grouped) == []
        await at(30 * S)
        assert flushes(grouped) == [["a:firing", "b:firing"]]  # one message, both alerts
        await at(2 * M)
        await rig.publish(id="c" * 32, at=T0 + 2 * M)
        await at(5 * M + 29 * S)
        assert len(grouped.requests) == 1  # waits for the tick
        await at(5 * M + 30 * S)
        assert flushes(grouped)[1:] == [["a:firing", "b:firing", "c:firing"]]
        # Nothing changes: a reminder on the first tick at or after last send + 1h.
        await at(65 * M + 29 * S)
        assert len(grouped.requests) == 2
        await at(65 * M + 30 * S)
        assert flushes(grouped)[2:] == [["a:firing", "b:firing", "c:firing"]]
        # Resolutions go out on the next tick, together; then the group ends.
        for i, who in enumerate("abc"):
            await rig.publish(
                id=who * 32, kind="breach.resolved", at=T0 + 66 * M + i, resolved_at=T0 + 66 * M
            )
        await at(66 * M)
        assert len(grouped.requests) == 3
        await at(70 * M + 30 * S)
        assert flushes(grouped)[3:] == [["a:resolved", "b:resolved", "c:resolved"]]
        last = orjson.loads(grouped.requests[-1].body)
        assert last["status"] == "resolved"
        assert last["groupLabels"] == {
            "agreement": last["commonLabels"]["agreement"],
            "customer": "acme",
        }
        keys = [r.headers["idempotency-key"] for r in grouped.requests]
        assert len(set(keys)) == len(keys)  # one key per (group, receiver, flush)
    assert await scalar(rig.engine, "SELECT count(*) FROM notification_groups") == 0
    assert await scalar(rig.engine, "SELECT count(*) FROM deliveries WHERE status = 'grouped'") == 0
    assert sorted(sent(direct)) == sorted(
        [f"{w}:breach.opened" for w in "abc"] + [f"{w}:breach.resolved" for w in "abc"]
    )


async def test_two_breaches_within_group_wait_make_one_request(rig: Rig) -> None:
    async with RecordingServer() as grouped:
        await apply_docs(
            rig.engine,
            receiver_doc("grouped", grouped.url),
            agreement_doc(
                [{"receivers": ["grouped"], "groupBy": ["customer"], "groupWait": "30s"}]
            ),
        )
        await rig.publish(id="a" * 32)
        rig.clock.now = T0 + 5 * S
        await rig.publish(id="b" * 32, at=T0 + 5 * S)
        await rig.deliver_due()
        assert grouped.requests == []
        rig.clock.now = T0 + 30 * S
        await rig.deliver_due()
        await rig.deliver_due()  # nothing more: the flush was delivered once
    assert len(grouped.requests) == 1
    body = orjson.loads(grouped.requests[0].body)
    assert body["status"] == "firing"
    assert body["receiver"] == "grouped"
    assert sorted(a["fingerprint"] for a in body["alerts"]) == ["a" * 32, "b" * 32]
    assert all(a["breach"]["id"] == a["fingerprint"] for a in body["alerts"])
    assert "breach_id" not in body["commonLabels"]
    assert (
        await scalar(rig.engine, "SELECT count(*) FROM deliveries WHERE status = 'merged'") == 2
    )  # each breach's own row records that it went out in the flush


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
        assert flushes(grouped) == [["a:firing"]]
        rig.clock.now = T0 + 5 * M + 30 * S
        await rig.deliver_due()
    assert flushes(grouped) == [["a:firing"], ["a:firing"]]
    acked = orjson.loads(grouped.requests[1].body)["alerts"][0]
    assert acked["acknowledged"]["by"] == "ana"
    assert acked["ackURL"] is None
