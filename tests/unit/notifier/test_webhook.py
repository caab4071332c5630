"""What the webhook channel sends (its failures: see test_channel_conformance)."""

from __future__ import annotations

import httpx
import orjson
import pytest

from services.notifier.channels import build_channels
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.channels.webhook.signature import SignatureInvalid, sign, verify
from services.notifier.message import simple
from services.notifier.secrets import Secrets
from shared.schemas import Breach
from tests.unit.notifier.support import T0, RecordingServer, make_breach
from tests.unit.notifier.test_channel_conformance import SECRET, receiver, webhook_receiver


async def test_posts_breach_json_with_idempotency_key_and_signature() -> None:
    breach = make_breach()
    secrets = Secrets({"SECRET": SECRET})
    async with httpx.AsyncClient() as http, RecordingServer() as server:
        channel = WebhookChannel(http, timeout_ms=2_000, secrets=secrets, clock=lambda: T0)
        result = await channel.deliver(simple(breach), webhook_receiver(server.url))
        again = await channel.deliver(simple(breach), webhook_receiver(server.url))
    assert (result.status_code, again.status_code) == (200, 200)
    first, second = server.requests
    assert first.method == "POST"
    assert first.path == "/hook"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["idempotency-key"] == breach.event_key
    assert second.headers["idempotency-key"] == breach.event_key  # same key on a retry
    assert first.headers["x-slawatch-kind"] == "breach.opened"
    assert first.headers["authorization"] == SECRET
    assert first.headers["user-agent"].startswith("slawatch-notifier/")
    assert Breach.model_validate(orjson.loads(first.body)) == breach
    signature = first.headers["x-slawatch-signature"]
    assert verify(SECRET, first.body, signature, now_s=T0 // 1000) == T0 // 1000


async def test_unsigned_without_secret_and_secret_headers_resolved() -> None:
    target = receiver(
        "hook",
        {"type": "webhook", "url": "http://x", "secretHeaders": {"X-Token": "env:TOKEN"}},
    )
    async with httpx.AsyncClient() as http, RecordingServer() as server:
        target = target.model_copy(
            update={"spec": target.spec.model_copy(update={"url": server.url})}
        )
        channel = WebhookChannel(http, timeout_ms=2_000, secrets=Secrets({"TOKEN": "t0k"}))
        await channel.deliver(simple(make_breach()), target)
    [request] = server.requests
    assert "x-slawatch-signature" not in request.headers
    assert request.headers["x-token"] == "t0k"


BODY = b'{"id": "x"}'


@pytest.mark.parametrize(
    ("header", "now_s", "error"),
    [
        (sign(SECRET, BODY, 1000), 1000, None),
        (sign(SECRET, BODY, 1000), 1300, None),  # at the edge of the window
        (sign(SECRET, BODY, 1000), 1301, "replay window"),
        (sign(SECRET, BODY, 1000), 699, "replay window"),
        (sign("other", BODY, 1000), 1000, "does not match"),
        (sign(SECRET, BODY + b" ", 1000), 1000, "does not match"),
        (sign(SECRET, BODY, 1000).replace("t=1000", "t=1001"), 1000, "does not match"),
        ("v1=abc", 1000, "malformed"),
        (None, 1000, "no signature"),
        (f"t=1000,v1=00,{sign(SECRET, BODY, 1000).split(',')[1]}", 1000, None),  # key rotation
    ],
)
def test_verify(header: str | None, now_s: int, error: str | None) -> None:
    if error is None:
        assert verify(SECRET, BODY, header, now_s) == 1000
    else:
        with pytest.raises(SignatureInvalid, match=error):
            verify(SECRET, BODY, header, now_s)


async def test_channels_by_receiver_type() -> None:
    async with httpx.AsyncClient() as http:
        channels = build_channels(http, 1_000)
    assert {name: channel.name for name, channel in channels.items()} == {
        n: n for n in ("webhook", "slack", "teams", "pagerduty", "alertmanager", "email")
    }
