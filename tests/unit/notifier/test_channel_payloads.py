"""What each channel sends, read back at real local receivers: Slack Block Kit,
Teams Adaptive Card, PagerDuty Events v2, email over STARTTLS / implicit TLS."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from services.notifier.channels.email import EmailChannel
from services.notifier.channels.pagerduty import PagerDutyChannel
from services.notifier.channels.slack import SlackChannel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.message import Ack, Notification
from services.notifier.secrets import Secrets
from services.notifier.templates import Renderer
from shared.schemas import WindowSli
from tests.unit.notifier.support import (
    LOCAL,
    T0,
    RecordingServer,
    SmtpServer,
    make_breach,
    self_signed_context,
)
from tests.unit.notifier.test_channel_conformance import receiver

SECRETS = Secrets(
    {
        "SLAWATCH_SECRET_PD_KEY": "R0UTING",
        "SLAWATCH_SECRET_SMTP_PASSWORD": "pw",
        "SLAWATCH_SECRET_HOOK": "unused",
    }
)
BREACH = make_breach(
    windows=[
        WindowSli(window="1h", sli=0.98, target=0.999),
        WindowSli(window="5m", sli=0.95, target=0.999),
    ],
    error_budget_remaining=0.25,
    burn_rates={"1h": 20.0},
)


def note(kind: str = "breach.opened", **changes: Any) -> Notification:
    breach = BREACH.model_copy(update={"kind": kind, **changes})
    return Notification(
        breach=breach,
        kind=kind,
        at=breach.at,
        status_url=f"http://n/v1/breaches/{breach.id}",
        ack_url="http://n/v1/ack/tok" if kind == "breach.opened" else None,
        console_url=f"http://n/console/breaches/{breach.id}",
    )


@pytest.fixture
async def http() -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient() as client:
        yield client


async def test_slack_block_kit(http: httpx.AsyncClient) -> None:
    channel = SlackChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    async with RecordingServer() as server:
        await channel.deliver(note(), receiver("s", {"type": "slack", "url": server.url}))
    message = orjson.loads(server.requests[0].body)
    assert message["text"] == "[PAGE] SLA breach: acme-checkout/availability {customer=acme}"
    header, section, context, actions = message["blocks"]
    assert header["type"] == "header"
    text = section["text"]["text"]
    assert "SLI 98.0 % vs target 99.9 % over 1h; SLI 95.0 % vs target 99.9 % over 5m" in text
    assert "error budget left 25.0 %" in text
    assert "Since: 2023-11-14T22:13:20.000Z" in text
    assert "For: acme (provider shopco)" in text
    assert [e["url"] for e in actions["elements"]] == [
        "http://n/v1/ack/tok",
        f"http://n/console/breaches/{BREACH.id}",
        f"http://n/v1/breaches/{BREACH.id}",
    ]
    assert BREACH.id in context["elements"][0]["text"]


async def test_templates_are_overridable_per_receiver(http: httpx.AsyncClient) -> None:
    channel = SlackChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    spec = {
        "type": "slack",
        "url": "env:SLAWATCH_SECRET_HOOK",
        "templates": {"title": "{{ agreement | upper }} is {{ severity }}"},
    }
    async with RecordingServer() as server:
        secrets = Secrets({"SLAWATCH_SECRET_HOOK": server.url})
        channel = SlackChannel(http, timeout_ms=2_000, secrets=secrets, renderer=Renderer())
        await channel.deliver(note(), receiver("s", spec))
    assert orjson.loads(server.requests[0].body)["text"] == "ACME-CHECKOUT is page"


async def test_teams_adaptive_card(http: httpx.AsyncClient) -> None:
    channel = TeamsChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    async with RecordingServer() as server:
        await channel.deliver(note(), receiver("t", {"type": "teams", "url": server.url}))
    message = orjson.loads(server.requests[0].body)
    [attachment] = message["attachments"]
    assert attachment["contentType"] == "application/vnd.microsoft.card.adaptive"
    card = attachment["content"]
    assert (card["type"], card["version"]) == ("AdaptiveCard", "1.4")
    facts = {f["title"]: f["value"] for f in card["body"][2]["facts"]}
    assert facts["SLI 1h"] == "SLI 98.0 % vs target 99.9 % over 1h"
    assert facts["Group"] == "customer=acme"
    assert [a["title"] for a in card["actions"]] == ["Acknowledge", "Console", "Status"]


@pytest.mark.parametrize(
    ("kind", "action", "severity"),
    [
        ("breach.opened", "trigger", "page"),
        ("breach.updated", "trigger", "ticket"),
        ("escalation.1", "trigger", "warning"),
        ("breach.acknowledged", "acknowledge", "page"),
        ("breach.resolved", "resolve", "info"),
    ],
)
async def test_pagerduty_events_v2(
    http: httpx.AsyncClient, kind: str, action: str, severity: str
) -> None:
    channel = PagerDutyChannel(http, timeout_ms=2_000, secrets=SECRETS, renderer=Renderer())
    spec = {"type": "pagerduty", "routingKey": "env:SLAWATCH_SECRET_PD_KEY"}
    async with RecordingServer(default=202) as server:
        spec["url"] = server.url
        await channel.deliver(
            note(kind, severity=severity) if kind != "escalation.1" else _escalation(severity),
            receiver("pd", spec),
        )
    event = orjson.loads(server.requests[0].body)
    assert event["routing_key"] == "R0UTING"
    assert event["event_action"] == action
    assert event["dedup_key"] == BREACH.id  # the same for every event of the breach
    if action != "trigger":
        assert "payload" not in event
        return
    payload = event["payload"]
    mapped = {"page": "critical", "ticket": "error", "warning": "warning", "info": "info"}
    assert payload["severity"] == mapped[severity]
    assert payload["source"] == "slawatch"
    assert payload["component"] == "checkout"
    details = payload["custom_details"]
    assert details["sli"][0] == {"window": "1h", "sli": 0.98, "target": 0.999, "good": None,
                                 "valid": None}  # fmt: skip
    assert details["error_budget_remaining"] == 0.25
    assert details["burn_rates"] == {"1h": 20.0}
    assert {link["href"] for link in event["links"]} >= {f"http://n/v1/breaches/{BREACH.id}"}


def _escalation(severity: str) -> Notification:
    base = note(severity=severity)
    return Notification(
        base.breach, "escalation.1", base.at, base.status_url, base.ack_url, base.console_url
    )


def email_spec(port: int, security: str, **extra: Any) -> dict[str, Any]:
    return {
        "type": "email",
        "host": "127.0.0.1",
        "port": port,
        "security": security,
        "from": "slawatch@example.org",
        "to": ["oncall@example.org", "boss@example.org"],
        **extra,
    }


@pytest.mark.parametrize("security", ["starttls", "tls"])
async def test_email_over_tls_with_auth(security: str, tmp_path: Path) -> None:
    context = self_signed_context(tmp_path)
    channel = EmailChannel(timeout_ms=5_000, secrets=SECRETS, renderer=Renderer(), outbound=LOCAL)
    spec = email_spec(
        0,
        security,
        username="alerts",
        password="env:SLAWATCH_SECRET_SMTP_PASSWORD",
        verifyTls=False,
    )
    async with SmtpServer(tls=context, implicit=security == "tls") as server:
        spec["port"] = server.port
        result = await channel.deliver(note(), receiver("mail", spec))
        [message] = await server.wait_for(1)
    assert result.status_code == 250
    assert server.logins == [("alerts", "pw")]
    assert message["Subject"] == "[PAGE] SLA breach: acme-checkout/availability {customer=acme}"
    assert message["To"] == "oncall@example.org, boss@example.org"
    assert message["X-Slawatch-Idempotency-Key"] == f"{BREACH.id}:breach.opened:{T0}"
    plain, html = message.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert "then acknowledge: http://n/v1/ack/tok" in plain.get_payload(decode=True).decode()
    assert html.get_content_type() == "text/html"
    assert '<a href="http://n/v1/ack/tok">Acknowledge</a>' in html.get_payload(decode=True).decode()


async def test_email_starttls_refused_when_server_has_none() -> None:
    channel = EmailChannel(timeout_ms=5_000, secrets=SECRETS, renderer=Renderer(), outbound=LOCAL)
    async with SmtpServer() as server:
        from services.notifier.channels.base import DeliveryError

        with pytest.raises(DeliveryError) as caught:
            await channel.deliver(note(), receiver("mail", email_spec(server.port, "starttls")))
    assert caught.value.retriable
    assert server.messages == []


async def test_email_acknowledgement_names_who() -> None:
    channel = EmailChannel(timeout_ms=5_000, secrets=SECRETS, renderer=Renderer(), outbound=LOCAL)
    acked = Notification(
        BREACH,
        "breach.acknowledged",
        T0 + 5,
        "http://n/s",
        None,
        "http://n/c",
        Ack("ana", "on it", T0 + 5),
    )
    async with SmtpServer() as server:
        await channel.deliver(acked, receiver("mail", email_spec(server.port, "none")))
        [message] = await server.wait_for(1)
    plain = message.get_payload()[0].get_payload(decode=True).decode()
    assert "Acknowledged by ana: on it" in plain
    assert message["Subject"].startswith("[PAGE] SLA breach acknowledged")
