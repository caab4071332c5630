"""Every objective kind on every channel: the message states the SLI and target in the
objective's unit and carries the ack and console links, read back at real local
receivers (HTTP server, SMTP server)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import httpx
import orjson
import pytest

from services.notifier.channels import build_channels
from services.notifier.channels.webhook.channel import group_body
from services.notifier.message import GroupNotification, Notification, console_url, objective_of
from services.notifier.secrets import Secrets
from services.notifier.templates import GROUP_DEFAULTS, Renderer, group_context
from shared.definitions.model import Agreement
from shared.schemas import Breach, WindowSli
from tests.unit.notifier.support import LOCAL, RecordingServer, SmtpServer, make_breach
from tests.unit.notifier.test_channel_conformance import receiver

BASE = "https://slawatch.example.org"
ACK = f"{BASE}/v1/ack/tok"

AGREEMENT = Agreement.model_validate(
    {
        "apiVersion": "slawatch/v1",
        "kind": "Agreement",
        "metadata": {"name": "acme-checkout"},
        "spec": {
            "type": "SLA",
            "provider": "shopco",
            "consumer": "acme",
            "objectives": [
                {
                    "name": "availability",
                    "kind": "ratio",
                    "service": "checkout",
                    "good": {"outcome": "good"},
                    "target": 0.9995,
                    "window": "30d",
                },
                {
                    "name": "latency-p99",
                    "kind": "quantile",
                    "service": "checkout",
                    "quantile": 0.99,
                    "threshold": 300,
                    "window": "5m",
                },
                {
                    "name": "heartbeat",
                    "kind": "freshness",
                    "service": "checkout",
                    "maxSilence": "2m",
                },
                {
                    "name": "response",
                    "kind": "deadline",
                    "service": "checkout",
                    "start": ["ticket.opened"],
                    "stop": ["ticket.responded"],
                    "target": "4h",
                    "calendar": "office",
                },
            ],
        },
    }
)

# (objective kind, breach, what every channel says about it)
KINDS: list[tuple[str, Breach, str]] = [
    (
        "ratio",
        make_breach(
            windows=[WindowSli(window="30d", sli=0.995, target=0.9995, good=995, valid=1000)],
            error_budget_remaining=-9.0,
        ),
        "SLI 99.50 % (995 of 1000 good) vs target 99.95 % over 30d",
    ),
    (
        "quantile",
        make_breach(
            objective="latency-p99",
            objective_id="acme-checkout/latency-p99",
            windows=[WindowSli(window="5m", sli=512.0, target=300.0, good=10, valid=200)],
        ),
        "p99 512 ms, threshold 300 ms over 5m",
    ),
    (
        "freshness",
        make_breach(
            objective="heartbeat",
            objective_id="acme-checkout/heartbeat",
            rule="freshness",
            windows=[WindowSli(window="2m", sli=250_000.0, target=120_000.0)],
        ),
        "no event for 4 m 10 s (allowed 2 m)",
    ),
    (
        "deadline",
        make_breach(
            objective="response",
            objective_id="acme-checkout/response",
            rule="deadline",
            group={"customer": "acme", "entity": "T-1"},
            windows=[
                WindowSli(
                    window="4h",
                    sli=12_000_000 / 14_400_000,
                    target=1.0,
                    good=12_000_000,
                    valid=14_400_000,
                )
            ],
        ),
        "entity T-1: 3 h 20 m of 4 h used (83 %), business time of calendar office",
    ),
]


def note(breach: Breach) -> Notification:
    return Notification(
        breach=breach,
        kind=breach.kind,
        at=breach.at,
        status_url=f"{BASE}/v1/breaches/{breach.id}",
        ack_url=ACK,
        console_url=console_url(BASE, breach.id),
        objective=objective_of(AGREEMENT, breach),
    )


def how_badly(text: str) -> str:
    [line] = [line for line in text.splitlines() if line.startswith("How badly: ")]
    return line


def slack(body: dict[str, Any]) -> list[str]:
    return [body["blocks"][1]["text"]["text"]]


def teams(body: dict[str, Any]) -> list[str]:
    card = body["attachments"][0]["content"]
    return [card["body"][1]["text"]]


def pagerduty(body: dict[str, Any]) -> list[str]:
    return [body["payload"]["summary"], body["payload"]["custom_details"]["sli_text"]]


def alertmanager(body: list[dict[str, Any]]) -> list[str]:
    [alert] = body
    return [alert["annotations"]["description"], alert["annotations"]["sli"]]


def webhook(body: dict[str, Any]) -> list[str]:
    return [body["text"]]


HTTP_CHANNELS: dict[str, tuple[dict[str, Any], Callable[[Any], list[str]]]] = {
    "slack": ({"type": "slack"}, slack),
    "teams": ({"type": "teams"}, teams),
    "pagerduty": ({"type": "pagerduty", "routingKey": "env:SLAWATCH_SECRET_PD"}, pagerduty),
    "alertmanager": ({"type": "alertmanager"}, alertmanager),
    "webhook": ({"type": "webhook"}, webhook),
}


def links_of(channel: str, body: Any) -> set[str]:
    """Every URL the message carries, where that channel puts links."""
    match channel:
        case "slack":
            return {e["url"] for e in body["blocks"][3]["elements"]}
        case "teams":
            return {a["url"] for a in body["attachments"][0]["content"]["actions"]}
        case "pagerduty":
            return {link["href"] for link in body["links"]}
        case "alertmanager":
            annotations = body[0]["annotations"]
            return {annotations["ack_url"], annotations["console_url"]}
        case _:
            return {body["ack_url"], body["console_url"]}


@pytest.mark.parametrize(("objective_kind", "breach", "said"), KINDS, ids=[k[0] for k in KINDS])
@pytest.mark.parametrize("channel", sorted(HTTP_CHANNELS))
async def test_http_channels_state_the_sli_in_the_objectives_unit(
    channel: str, objective_kind: str, breach: Breach, said: str
) -> None:
    spec, texts = HTTP_CHANNELS[channel]
    async with httpx.AsyncClient() as http, RecordingServer(default=202) as server:
        channels = build_channels(http, 5_000, Secrets({"SLAWATCH_SECRET_PD": "KEY"}))
        await channels[channel].deliver(note(breach), receiver("r", {**spec, "url": server.url}))
    body = orjson.loads(server.requests[0].body)
    found = texts(body)
    headline = f"[PAGE] SLA breach: acme-checkout/{breach.objective} {{customer=acme"
    for text in found:
        if text.startswith("[PAGE]"):  # a whole message, or PagerDuty's one-line summary
            assert text.startswith(headline)
        if "\n" in text:
            assert how_badly(text) == "How badly: " + said + (
                "; error budget left -900.0 % (overspent)" if objective_kind == "ratio" else ""
            )
            assert f"console: {BASE}/console/breaches/{breach.id}" in text
        elif channel == "pagerduty" and text.startswith("[PAGE]"):
            assert text.endswith(f"}}: {said}")
        else:
            assert text == said
    assert "e+" not in " ".join(found)  # no number in exponent notation anywhere
    assert {ACK, f"{BASE}/console/breaches/{breach.id}"} <= links_of(channel, body)


@pytest.mark.parametrize(("objective_kind", "breach", "said"), KINDS, ids=[k[0] for k in KINDS])
async def test_email_states_the_sli_in_the_objectives_unit(
    objective_kind: str, breach: Breach, said: str
) -> None:
    async with httpx.AsyncClient() as http, SmtpServer() as server:
        channels = build_channels(http, 5_000, outbound=LOCAL)
        spec = {
            "type": "email",
            "host": "127.0.0.1",
            "port": server.port,
            "security": "none",
            "from": "slawatch@example.org",
            "to": ["oncall@example.org"],
        }
        await channels["email"].deliver(note(breach), receiver("mail", spec))
        [message] = await server.wait_for(1)
    plain, html = (part.get_payload(decode=True).decode() for part in message.get_payload())
    assert how_badly(plain).startswith("How badly: " + said)
    assert f"then acknowledge: {ACK}" in plain
    assert f"console: {BASE}/console/breaches/{breach.id}" in plain
    assert said in html
    assert f'<a href="{BASE}/console/breaches/{breach.id}">Console</a>' in html


@pytest.mark.parametrize(("objective_kind", "breach", "said"), KINDS, ids=[k[0] for k in KINDS])
async def test_group_flush_states_each_alerts_sli(
    objective_kind: str, breach: Breach, said: str
) -> None:
    group = GroupNotification("r", "g", breach.at, (note(breach),))
    renderer = Renderer()
    text = renderer.render("group_text", GROUP_DEFAULTS, {}, group_context(group, renderer, {}))
    assert f"): {said}" in text
    assert f"console: {BASE}/console/breaches/{breach.id}" in text
    [alert] = group_body(group, renderer)["alerts"]
    assert alert["consoleURL"] == f"{BASE}/console/breaches/{breach.id}"
    assert how_badly(alert["annotations"]["description"]).startswith("How badly: " + said)
