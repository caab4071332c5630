"""What the webhook channel sends (its failures: see test_channel_conformance)."""

from __future__ import annotations

import httpx
import orjson

from services.notifier.channels import build_channels
from services.notifier.channels.webhook import WebhookChannel
from shared.schemas import Breach
from tests.unit.notifier.support import RecordingServer, make_breach
from tests.unit.notifier.test_channel_conformance import SECRET, webhook_receiver


async def test_posts_breach_json_with_idempotency_key() -> None:
    breach = make_breach()
    async with httpx.AsyncClient() as http, RecordingServer() as server:
        channel = WebhookChannel(http, timeout_ms=2_000)
        result = await channel.deliver(breach, webhook_receiver(server.url))
        again = await channel.deliver(breach, webhook_receiver(server.url))
    assert (result.status_code, again.status_code) == (200, 200)
    first, second = server.requests
    assert first.method == "POST"
    assert first.path == "/hook"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["idempotency-key"] == breach.event_key
    assert second.headers["idempotency-key"] == breach.event_key  # same key on a retry
    assert first.headers["authorization"] == SECRET
    assert first.headers["user-agent"].startswith("slawatch-notifier/")
    assert Breach.model_validate(orjson.loads(first.body)) == breach


async def test_channels_by_receiver_type() -> None:
    async with httpx.AsyncClient() as http:
        channels = build_channels(http, 1_000)
    assert {name: channel.name for name, channel in channels.items()} == {"webhook": "webhook"}
