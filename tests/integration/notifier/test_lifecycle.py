"""Lifecycle on the real PostgreSQL with real receivers and a fake clock: escalation
timing, acknowledgement (API and signed link) stopping it, silences and maintenance
windows suppressing, resolution reaching everyone notified of the opening."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import AsyncEngine

from services.notifier.acklink import AckLinks
from services.notifier.api import Lifecycle, create_app
from services.notifier.backoff import Backoff
from services.notifier.catalog import CatalogCache
from services.notifier.channels import build_channels
from services.notifier.groups import GroupFlusher
from services.notifier.intake import plan, record_breach
from services.notifier.metrics import NotifierMetrics
from services.notifier.worker import DeliveryWorker, Doorbell, WorkerConfig
from shared import db
from shared.definitions.kinds.silence import MaintenanceWindow
from shared.definitions.load import parse_document
from shared.definitions.store import apply
from tests.integration.notifier.support import agreement_doc, apply_docs, receiver_doc, scalar
from tests.keys import ADMIN_NAME, api_client, static_auth
from tests.unit.notifier.support import T0, RecordingServer, make_breach

pytestmark = pytest.mark.integration

M = 60_000


class FakeClock:
    def __init__(self, now: int) -> None:
        self.now = now

    def __call__(self) -> int:
        return self.now


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


class Rig:
    """Intake, one worker and the API over one fake clock."""

    def __init__(self, engine: AsyncEngine, http: httpx.AsyncClient, clock: FakeClock) -> None:
        self.engine = engine
        self.clock = clock
        self.sessions = db.sessions(engine)
        self.catalog = CatalogCache(self.sessions, clock)
        self.links = AckLinks(b"k", "http://notifier.test", ttl_ms=60 * M)
        self.worker = DeliveryWorker(
            "w",
            self.sessions,
            self.catalog,
            build_channels(http, 2_000, clock=clock),
            NotifierMetrics(CollectorRegistry()),
            WorkerConfig(
                max_attempts=3,
                backoff=Backoff(base_ms=10, max_ms=10),
                deadline_ms=3_000,
                lease_ms=10_000,
                poll_interval_ms=50,
            ),
            clock,
            lambda: 0.5,
            Doorbell(),
            links=self.links,
        )
        app = create_app(
            self.sessions, CollectorRegistry(), {}, Lifecycle(clock, self.links), auth=static_auth()
        )
        self.flusher = GroupFlusher(self.sessions, clock, lambda: None, 50)
        self.api = api_client(app, "http://notifier.test")

    async def publish(self, **overrides: Any) -> None:
        await self.catalog.reload()
        breach = make_breach(**overrides)
        agreement = self.catalog.current.agreements[breach.agreement.name]
        planned = plan(breach, agreement, self.clock())
        async with self.sessions() as session, session.begin():
            await record_breach(
                session, breach, planned.receivers, self.clock(), planned.steps, planned.groups
            )

    async def deliver_due(self) -> int:
        await self.flusher.run_once()
        handled = 0
        while count := await self.worker.run_once():
            handled += count
        return handled

    async def statuses(self) -> dict[str, str]:
        raw = await scalar(
            self.engine,
            "SELECT string_agg(receiver || '/' || kind || '=' || status, ';' ORDER BY id)"
            " FROM deliveries",
        )
        return dict(part.split("=") for part in (raw or "").split(";") if part)


@pytest.fixture
async def rig(engine: AsyncEngine, http: httpx.AsyncClient) -> AsyncIterator[Rig]:
    built = Rig(engine, http, FakeClock(T0))
    async with built.api:
        yield built


def escalating(*steps: tuple[str, str]) -> dict[str, Any]:
    return agreement_doc(
        [
            {
                "receivers": ["first"],
                "escalate": [{"after": after, "receivers": [who]} for after, who in steps],
            }
        ]
    )


async def test_escalation_steps_fire_on_time_until_acked(rig: Rig) -> None:
    async with RecordingServer() as first, RecordingServer() as second, RecordingServer() as third:
        await apply_docs(
            rig.engine,
            receiver_doc("first", first.url),
            receiver_doc("second", second.url),
            receiver_doc("third", third.url),
            escalating(("5m", "second"), ("15m", "third")),
        )
        await rig.publish()
        assert await rig.deliver_due() == 1
        rig.clock.now = T0 + 5 * M - 1
        assert await rig.deliver_due() == 0
        rig.clock.now = T0 + 5 * M
        assert await rig.deliver_due() == 1
        [step] = second.requests
        assert step.headers["x-slawatch-kind"] == "escalation.1"
        assert step.headers["idempotency-key"] == f"{make_breach().id}:escalation.1:{T0}"

        answer = await rig.api.post(
            f"/v1/breaches/{make_breach().id}/ack", json={"by": "ana", "comment": "on it"}
        )
        assert answer.status_code == 200
        assert answer.json()["acked_by"] == "ana" and answer.json()["already"] is False
        again = await rig.api.post(f"/v1/breaches/{make_breach().id}/ack", json={"by": "bo"})
        assert again.json()["acked_by"] == "ana" and again.json()["already"] is True
        # audit: the key that acknowledged, beside the name the caller gave
        actor = await scalar(rig.engine, "SELECT actor FROM breach_acks WHERE acked_by = 'ana'")
        assert actor == ADMIN_NAME

        rig.clock.now = T0 + 30 * M
        await rig.deliver_due()
    assert third.requests == []
    assert [r.headers["x-slawatch-kind"] for r in first.requests] == [
        "breach.opened",
        "breach.acknowledged",
    ]
    assert [r.headers["x-slawatch-kind"] for r in second.requests] == [
        "escalation.1",
        "breach.acknowledged",
    ]
    statuses = await rig.statuses()
    assert statuses["third/escalation.2"] == "cancelled"
    assert statuses["first/breach.acknowledged"] == "delivered"


async def test_resolution_cancels_escalation_and_reaches_everyone_notified(rig: Rig) -> None:
    async with RecordingServer() as first, RecordingServer() as second, RecordingServer() as other:
        await apply_docs(
            rig.engine,
            receiver_doc("first", first.url),
            receiver_doc("second", second.url),
            receiver_doc("other", other.url),
            agreement_doc(
                [
                    {"match": {"kind": "breach.resolved"}, "receivers": ["other"]},
                    {
                        "receivers": ["first"],
                        "escalate": [
                            {"after": "5m", "receivers": ["second"]},
                            {"after": "10m", "receivers": ["second"]},
                        ],
                    },
                ]
            ),
        )
        await rig.publish()
        rig.clock.now = T0 + 5 * M
        await rig.deliver_due()
        await rig.publish(kind="breach.resolved", at=T0 + 6 * M, resolved_at=T0 + 6 * M)
        rig.clock.now = T0 + 20 * M
        await rig.deliver_due()
    assert [r.headers["x-slawatch-kind"] for r in first.requests] == [
        "breach.opened",
        "breach.resolved",
    ]
    assert [r.headers["x-slawatch-kind"] for r in second.requests] == [
        "escalation.1",
        "breach.resolved",
    ]
    assert [r.headers["x-slawatch-kind"] for r in other.requests] == ["breach.resolved"]
    assert (await rig.statuses())["second/escalation.2"] == "cancelled"


async def test_ack_link_in_messages_is_signed_and_expires(rig: Rig) -> None:
    async with RecordingServer() as slack:
        await apply_docs(
            rig.engine,
            {
                "apiVersion": "slawatch/v1",
                "kind": "Receiver",
                "metadata": {"name": "chat"},
                "spec": {"type": "slack", "url": slack.url},
            },
            agreement_doc([{"receivers": ["chat"]}]),
        )
        await rig.publish()
        await rig.deliver_due()
    [request] = slack.requests
    message = orjson.loads(request.body)
    buttons = {b["text"]["text"]: b["url"] for b in message["blocks"][-1]["elements"]}
    link = buttons["Acknowledge"].removeprefix("http://notifier.test")
    assert buttons["Status"] == f"http://notifier.test/v1/breaches/{make_breach().id}"
    assert "then acknowledge: http" in message["blocks"][1]["text"]["text"]  # what next

    page = await rig.api.get(link)
    assert page.status_code == 200 and "<form" in page.text
    assert await scalar(rig.engine, "SELECT count(*) FROM breach_acks") == 0  # GET never acks
    tampered = link[:-3] + ("AAA" if not link.endswith("AAA") else "BBB")
    assert (await rig.api.post(tampered)).status_code == 403
    rig.clock.now = T0 + 61 * M
    expired = await rig.api.post(link)
    assert expired.status_code == 403 and "expired" in expired.json()["detail"]
    rig.clock.now = T0 + 1 * M
    acked = await rig.api.post(link, data={"by": "cleo", "comment": "looking"})
    assert acked.status_code == 200
    assert acked.json()["acked_by"] == "cleo"
    assert await scalar(rig.engine, "SELECT via FROM breach_acks") == "link"


async def test_silences_and_maintenance_windows_suppress_and_record(rig: Rig) -> None:
    async with RecordingServer() as hook:
        await apply_docs(
            rig.engine,
            receiver_doc("hook", hook.url),
            agreement_doc([{"receivers": ["hook"]}]),
        )
        created = await rig.api.post(
            "/v1/silences",
            json={"match": {"customer": "acme"}, "duration": "10m", "created_by": "ana"},
        )
        assert created.status_code == 201
        silence = created.json()
        actor = await scalar(
            rig.engine, "SELECT actor FROM notifier_silences WHERE id = :id", id=silence["id"]
        )
        assert actor == ADMIN_NAME
        await rig.publish(id="a" * 32)
        await rig.deliver_due()
        assert hook.requests == []
        listed = (await rig.api.get("/v1/silences", params={"active": "true"})).json()
        assert [s["id"] for s in listed] == [silence["id"]]

        expired = await rig.api.delete(f"/v1/silences/{silence['id']}")
        assert expired.json()["active"] is False
        async with rig.sessions() as session:
            await apply(
                session,
                [
                    MaintenanceWindow.model_validate(
                        {
                            "apiVersion": "slawatch/v1",
                            "kind": "MaintenanceWindow",
                            "metadata": {"name": "upgrade"},
                            "spec": {
                                "match": {"service": "checkout"},
                                "start": T0 - M,
                                "end": T0 + M,
                            },
                        }
                    )
                ],
            )
            await session.commit()
        await rig.publish(id="b" * 32)
        await rig.deliver_due()
        assert hook.requests == []
        rig.clock.now = T0 + 2 * M
        await rig.publish(id="c" * 32)
        await rig.deliver_due()
    assert len(hook.requests) == 1
    outcomes = await scalar(
        rig.engine,
        "SELECT string_agg(d.breach_id || ':' || a.outcome || ':' || coalesce(a.error, ''),"
        " ';' ORDER BY a.id) FROM delivery_attempts a JOIN deliveries d ON d.id = a.delivery_id",
    )
    assert outcomes == ";".join(
        [
            f"{'a' * 32}:suppressed:muted by api/{silence['id']}",
            f"{'b' * 32}:suppressed:muted by MaintenanceWindow/upgrade",
            f"{'c' * 32}:delivered:",
        ]
    )
    history = (await rig.api.get("/v1/receivers/hook/attempts", params={"limit": 2})).json()
    assert [i["outcome"] for i in history["items"]] == ["delivered", "suppressed"]
    rest = (
        await rig.api.get("/v1/receivers/hook/attempts", params={"cursor": history["next_cursor"]})
    ).json()
    assert [i["breach_id"] for i in rest["items"]] == ["a" * 32]
    assert rest["next_cursor"] is None


async def test_ack_of_unknown_breach_is_404(rig: Rig) -> None:
    answer = await rig.api.post("/v1/breaches/nope/ack", json={"by": "x"})
    assert answer.status_code == 404
    assert answer.headers["content-type"] == "application/problem+json"


def test_silence_kind_parses() -> None:
    doc = parse_document(
        {
            "apiVersion": "slawatch/v1",
            "kind": "Silence",
            "metadata": {"name": "db"},
            "spec": {"match": {"service": "x"}, "start": "2026-01-01T00:00:00Z", "end": T0 * 2},
        }
    )
    assert doc.kind == "Silence"
