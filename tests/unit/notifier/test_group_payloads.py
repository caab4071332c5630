"""One group flush, rendered by each channel at real local receivers: the webhook's
Alertmanager-shaped document, Slack / Teams / email listing every alert, Alertmanager
receiving every alert in one push, PagerDuty one event per alert (dedup_key per breach)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import orjson
import pytest

from services.notifier.channels.alertmanager import AlertmanagerChannel
from services.notifier.channels.base import DeliveryError
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.pagerduty import PagerDutyChannel
from services.notifier.channels.slack import SlackChannel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.message import Ack, GroupNotification, Notification
from services.notifier.templates import Renderer
from tests.unit.notifier.support import LOCAL, T0, RecordingServer, SmtpServer, make_breach
from tests.unit.notifier.test_channel_conformance import receiver
from tests.unit.notifier.test_channel_payloads import SECRETS, email_spec

A = make_breach(id="a" * 32, group={"customer": "acme", "region": "eu"})
B = make_breach(
    id="b" * 32,
    kind="breach.resolved",
    group={"customer": "acme", "region": "us"},
    resolved_at=T0 + 60_000,
    at=T0 + 60_000,
)


def group(*, acked: bool = False) -> GroupNotification:
    firing = Notification(
        A,
        "breach.opened",
        A.at,
        f"http://n/v1/breaches/{A.id}",
        None if acked else "http://n/v1/ack/tok",
        f"http://n/console/breaches/{A.id}",
        Ack("ana", "on it", T0 + 5) if acked else None,
    )
    resolved = Notification(
        B,
        "breach.resolved",
        B.at,
        f"http://n/v1/breaches/{B.id}",
        None,
        f"http://n/console/breaches/{B.id}",
    )
    return GroupNotification(
        receiver="team",
        group_key="acme-checkout#0:customer=acme",
        at=T0 + 90_000,
        alerts=(firing, resolved),
        group_labels={"agreement": "acme-checkout", "customer": "acme"},
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


def test_group_status_labels_and_key() -> None:
    flush = group()
    assert flush.status == "firing"
    assert flush.common_labels["customer"] == "acme"
    assert "region" not in flush.common_labels
    assert "breach_id" not in flush.common_labels
    resolved_only = GroupNotification("team", "k", T0, (flush.alerts[1],))
    assert resolved_only.status == "resolved"
    # Per (group key, flush time, receiver): another receiver or flush, another key.
    assert flush.idempotency_key == group().idempotency_key
    assert GroupNotification("other", flush.group_key, flush.at, ()).idempotency_key != (
        flush.idempotency_key
    )
    assert GroupNotification("team", flush.group_key, flush.at + 1, ()).idempotency_key != (
        flush.idempotency_key
    )


async def test_webhook_posts_one_alertmanager_shaped_document(http: httpx.AsyncClient) -> None:
    channel = WebhookChannel(http, timeout_ms=2_000, secrets=SECRETS)
    async with RecordingServer() as server:
        await channel.deliver_group(
            group(),
            receiver(
                "w", {"type": "webhook", "url": server.url, "secret": "env:SLAWATCH_SECRET_HOOK"}
            ),
        )
    [request] = server.requests
    assert request.headers["x-slawatch-kind"] == "group.flush"
    assert request.headers["idempotency-key"] == group().idempotency_key
    assert "x-slawatch-signature" in request.headers
    body: dict[str, Any] = orjson.loads(request.body)
    assert body["version"] == "4"
    assert body["status"] == "firing"
    assert body["receiver"] == "team"
    assert body["groupLabels"] == {"agreement": "acme-checkout", "customer": "acme"}
    assert body["commonLabels"]["customer"] == "acme"
    firing, resolved = body["alerts"]
    assert (firing["status"], firing["fingerprint"], firing["endsAt"]) == ("firing", A.id, None)
    assert firing["labels"]["region"] == "eu"
    assert firing["ackURL"] == "http://n/v1/ack/tok"
    assert firing["breach"]["id"] == A.id
    assert resolved["status"] == "resolved"
    assert resolved["kind"] == "breach.resolved"
    assert resolved["endsAt"] is not None


async def test_slack_lists_every_alert(http: httpx.AsyncClient) -> None:
    channel = SlackChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    async with RecordingServer() as server:
        await channel.deliver_group(group(), receiver("s", {"type": "slack", "url": server.url}))
    [request] = server.requests
    message = orjson.loads(request.body)
    assert message["text"] == "[FIRING:1] 2 SLA breaches agreement=acme-checkout customer=acme"
    text = message["blocks"][1]["text"]["text"]
    assert "[PAGE] SLA breach: acme-checkout/availability {customer=acme,region=eu}" in text
    assert "[RESOLVED] SLA breach resolved" in text
    assert "acknowledge: http://n/v1/ack/tok" in text
    assert A.id in message["blocks"][2]["elements"][0]["text"]
    assert B.id in message["blocks"][2]["elements"][0]["text"]


async def test_teams_one_card_one_fact_per_alert(http: httpx.AsyncClient) -> None:
    channel = TeamsChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    async with RecordingServer() as server:
        await channel.deliver_group(group(), receiver("t", {"type": "teams", "url": server.url}))
    card = orjson.loads(server.requests[0].body)["attachments"][0]["content"]
    facts = card["body"][2]["facts"]
    assert [f["title"] for f in facts] == ["PAGE", "RESOLVED"]
    assert card["body"][0]["text"].startswith("[FIRING:1] 2 SLA breaches")


async def test_email_one_message_listing_alerts() -> None:
    channel = EmailChannel(timeout_ms=5_000, secrets=SECRETS, renderer=Renderer(), outbound=LOCAL)
    async with SmtpServer() as server:
        await channel.deliver_group(
            group(acked=True), receiver("mail", email_spec(server.port, "none"))
        )
        [message] = await server.wait_for(1)
    assert message["Subject"].startswith("[FIRING:1] 2 SLA breaches")
    assert message["X-Slawatch-Idempotency-Key"] == group().idempotency_key
    plain, html = message.get_payload()
    text = plain.get_payload(decode=True).decode()
    assert "acknowledged by ana" in text
    assert "SLA breach resolved" in text
    assert "<li>" in html.get_payload(decode=True).decode()


async def test_alertmanager_pushes_every_alert_at_once(http: httpx.AsyncClient) -> None:
    channel = AlertmanagerChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    async with RecordingServer() as server:
        await channel.deliver_group(
            group(), receiver("am", {"type": "alertmanager", "url": server.url})
        )
    [request] = server.requests
    alerts = orjson.loads(request.body)
    assert [a["labels"]["breach_id"] for a in alerts] == [A.id, B.id]


async def test_pagerduty_one_event_per_alert(http: httpx.AsyncClient) -> None:
    channel = PagerDutyChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    spec = {"type": "pagerduty", "url": "", "routingKey": "env:SLAWATCH_SECRET_PD_KEY"}
    async with RecordingServer() as server:
        spec["url"] = server.url
        await channel.deliver_group(group(), receiver("pd", spec))
    events = [orjson.loads(r.body) for r in server.requests]
    assert [(e["dedup_key"], e["event_action"]) for e in events] == [
        (A.id, "trigger"),
        (B.id, "resolve"),
    ]


async def test_pagerduty_group_fails_on_the_first_failure(http: httpx.AsyncClient) -> None:
    channel = PagerDutyChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    async with RecordingServer(default=503) as server:
        spec = {"type": "pagerduty", "url": server.url, "routingKey": "env:SLAWATCH_SECRET_PD_KEY"}
        with pytest.raises(DeliveryError) as caught:
            await channel.deliver_group(group(), receiver("pd", spec))
    assert caught.value.retriable
    assert len(server.requests) == 1
