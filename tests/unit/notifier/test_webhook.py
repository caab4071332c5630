"""What the webhook channel sends, checked by the reference Standard Webhooks library
on real loopback deliveries (its failures: see test_channel_conformance)."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from standardwebhooks import Webhook
from standardwebhooks.webhooks import WebhookVerificationError

from services.notifier.channels import build_channels
from services.notifier.channels.base import DeliveryError, Reason
from services.notifier.channels.webhook import WebhookChannel, legacy
from services.notifier.channels.webhook.channel import parse_breach_body
from services.notifier.channels.webhook.signature import (
    SecretInvalid,
    SignatureInvalid,
    SigningKey,
    Verified,
    format_secret,
    parse_secret,
    sign,
    signed_headers,
    verify,
)
from services.notifier.message import simple
from services.notifier.secrets import Secrets
from shared.definitions.model import Receiver
from shared.timeutil import wall_clock_ms
from tests.unit.notifier.support import T0, RecordingServer, Request, make_breach
from tests.unit.notifier.test_channel_conformance import SECRET, receiver
from tests.unit.notifier.test_group_payloads import group

KEY = bytes(range(32))
WHSEC = format_secret(KEY)  # whsec_AAECAwQF...
DOCS = Path(__file__).parents[3] / "docs" / "webhooks.md"


def hook(url: str, secret: str | None = "env:SLAWATCH_SECRET_HOOK") -> Receiver:
    spec: dict[str, object] = {"type": "webhook", "url": url, "headers": {"X-Team": "payments"}}
    if secret is not None:
        spec["secret"] = secret
    return receiver("hook", spec)


async def deliver(
    secret_value: str | None, *, clock_ms: int | None = None, attempts: int = 1
) -> list[Request]:
    """``attempts`` real POSTs of one notification to a loopback server."""
    environ = {} if secret_value is None else {"SLAWATCH_SECRET_HOOK": secret_value}
    clock = wall_clock_ms if clock_ms is None else (lambda: clock_ms)
    async with httpx.AsyncClient() as http, RecordingServer() as server:
        channel = WebhookChannel(http, timeout_ms=5_000, secrets=Secrets(environ), clock=clock)
        target = hook(server.url, None if secret_value is None else "env:SLAWATCH_SECRET_HOOK")
        for _ in range(attempts):
            await channel.deliver(simple(make_breach()), target)
    return server.requests


async def test_every_delivery_verifies_with_the_standardwebhooks_library() -> None:
    breach = make_breach()
    first, retry = await deliver(WHSEC, attempts=2)
    for request in (first, retry):
        parsed = Webhook(WHSEC).verify(request.body, request.headers)
        assert parse_breach_body(request.body) == breach
        assert parsed["ack_url"] is None  # simple(): no ack key
        assert parsed["console_url"] == f"http://127.0.0.1:8082/console/breaches/{breach.id}"
        assert parsed["status_url"] == f"http://127.0.0.1:8082/v1/breaches/{breach.id}"
        assert parsed["text"].startswith("[PAGE] SLA breach: acme-checkout/availability")
        assert "SLI 98.0 % (98 of 100 good) vs target 99.9 % over 1h" in parsed["text"]
    assert first.headers["webhook-id"] == retry.headers["webhook-id"] == breach.event_key
    assert first.headers["idempotency-key"] == breach.event_key  # kept for receivers using it
    assert first.headers["webhook-timestamp"].isdigit()
    assert first.headers["webhook-signature"].startswith("v1,")
    assert first.headers["x-slawatch-kind"] == "breach.opened"
    assert first.headers["x-team"] == "payments"
    assert first.headers["content-type"] == "application/json"
    assert first.headers["user-agent"].startswith("slawatch-notifier/")
    assert "x-slawatch-signature" not in first.headers  # a whsec_ secret: the standard only


async def test_the_library_rejects_a_tampered_body_and_a_stale_or_future_timestamp() -> None:
    [request] = await deliver(WHSEC)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(WHSEC).verify(request.body.replace(b"acme", b"acmf"), request.headers)
    with pytest.raises(WebhookVerificationError, match="No matching signature"):
        Webhook(format_secret(bytes(32))).verify(request.body, request.headers)
    ten_minutes_ms = 600_000
    [stale] = await deliver(WHSEC, clock_ms=wall_clock_ms() - ten_minutes_ms)
    with pytest.raises(WebhookVerificationError, match="too old"):
        Webhook(WHSEC).verify(stale.body, stale.headers)
    [future] = await deliver(WHSEC, clock_ms=wall_clock_ms() + ten_minutes_ms)
    with pytest.raises(WebhookVerificationError, match="too new"):
        Webhook(WHSEC).verify(future.body, future.headers)


async def test_each_attempt_is_stamped_with_its_own_time() -> None:
    times = iter([T0, T0 + 61_000])
    async with httpx.AsyncClient() as http, RecordingServer() as server:
        channel = WebhookChannel(
            http,
            timeout_ms=5_000,
            secrets=Secrets({"SLAWATCH_SECRET_HOOK": WHSEC}),
            clock=lambda: next(times),
        )
        for _ in range(2):
            await channel.deliver(simple(make_breach()), hook(server.url))
    first, retry = server.requests
    assert (first.headers["webhook-timestamp"], retry.headers["webhook-timestamp"]) == (
        str(T0 // 1000),
        str(T0 // 1000 + 61),
    )
    assert first.headers["webhook-signature"] != retry.headers["webhook-signature"]
    for request, now_s in ((first, T0 // 1000), (retry, T0 // 1000 + 61)):
        assert verify(WHSEC, request.body, request.headers, now_s=now_s) == Verified(
            make_breach().event_key, now_s
        )


async def test_group_flush_verifies_with_the_library() -> None:
    flush = group()
    async with httpx.AsyncClient() as http, RecordingServer() as server:
        channel = WebhookChannel(
            http, timeout_ms=5_000, secrets=Secrets({"SLAWATCH_SECRET_HOOK": WHSEC})
        )
        await channel.deliver_group(flush, hook(server.url))
    [request] = server.requests
    assert Webhook(WHSEC).verify(request.body, request.headers)["groupKey"] == flush.group_key
    assert request.headers["webhook-id"] == flush.idempotency_key


async def test_unsigned_without_secret_but_still_identified() -> None:
    [request] = await deliver(None)
    assert "webhook-signature" not in request.headers
    assert "x-slawatch-signature" not in request.headers
    assert request.headers["webhook-id"] == make_breach().event_key
    assert request.headers["webhook-timestamp"].isdigit()


async def test_a_plain_secret_is_raw_key_bytes_with_the_legacy_header_and_one_warning(
    caplog: pytest.LogCaptureFixture,
) -> None:
    plain = "a-plain-secret-from-before-whsec"
    with caplog.at_level(logging.WARNING):
        first, second = await deliver(plain, attempts=2)
    # The library takes raw key bytes as bytes (a str would be base64-decoded).
    assert Webhook(plain.encode()).verify(first.body, first.headers)
    timestamp = int(first.headers["webhook-timestamp"])
    header = first.headers["x-slawatch-signature"]
    assert legacy.verify(plain.encode(), first.body, header, now_s=timestamp) == timestamp
    assert "x-slawatch-signature" in second.headers
    warnings = [r for r in caplog.records if "deprecated" in r.getMessage()]
    assert len(warnings) == 1  # once per receiver, not per delivery
    assert "receiver hook" in warnings[0].getMessage()
    assert plain not in caplog.text


@pytest.mark.parametrize(
    ("secret", "error"),
    [
        ("whsec_not*base64", "not valid base64"),
        ("whsec_" + base64.b64encode(bytes(16)).decode(), "16 bytes"),
        ("whsec_", "0 bytes"),
    ],
)
async def test_an_unusable_whsec_secret_is_a_retriable_config_error(
    secret: str, error: str
) -> None:
    async with httpx.AsyncClient() as http:
        channel = WebhookChannel(
            http, timeout_ms=1_000, secrets=Secrets({"SLAWATCH_SECRET_HOOK": secret})
        )
        with pytest.raises(DeliveryError, match=error) as caught:
            await channel.deliver(simple(make_breach()), hook("http://127.0.0.1:9/"))
    assert (caught.value.reason, caught.value.retriable) == (Reason.CONFIG, True)
    assert secret[6:] == "" or secret[6:] not in str(caught.value)


@pytest.mark.parametrize(
    ("secret", "key", "legacy"),
    [
        (WHSEC, KEY, False),
        (WHSEC.rstrip("="), KEY, False),  # unpadded, as copied from some dashboards
        ("plain", b"plain", True),
        (SECRET, SECRET.encode(), True),
    ],
)
def test_parse_secret(secret: str, key: bytes, legacy: bool) -> None:
    assert parse_secret(secret) == SigningKey(key, legacy)


def test_parse_secret_refuses_empty() -> None:
    with pytest.raises(SecretInvalid, match="empty"):
        parse_secret("")


BODY = b'{"id": "x"}'
MSG = "0123:breach.opened:1700000000000"


def headers(
    msg_id: str = MSG, timestamp_s: int = 1000, body: bytes = BODY, key: bytes = KEY
) -> dict[str, str]:
    return signed_headers(key, msg_id, timestamp_s, body)


def _with(**changes: str | None) -> dict[str, str]:
    built = headers()
    for name, value in changes.items():
        header = name.replace("_", "-")
        if value is None:
            del built[header]
        else:
            built[header] = value
    return built


@pytest.mark.parametrize(
    ("given", "now_s", "error"),
    [
        (headers(), 1000, None),
        (headers(), 1300, None),  # at the edge of the window
        (headers(), 700, None),
        (headers(), 1301, "replay window"),
        (headers(), 699, "replay window"),
        (headers(key=bytes(32)), 1000, "does not match"),
        (headers(body=BODY + b" "), 1000, "does not match"),
        (_with(webhook_timestamp="1001"), 1000, "does not match"),
        (_with(webhook_id="other"), 1000, "does not match"),
        (_with(webhook_timestamp="1e3"), 1000, "malformed webhook-timestamp"),
        (
            _with(webhook_timestamp="\u0661\u0660\u0660\u0660"),
            1000,
            "malformed webhook-t",
        ),  # Arabic-Indic 1000
        (_with(webhook_signature="v1a,abc"), 1000, "no v1 signature"),
        (_with(webhook_signature="v1,not-base64!"), 1000, "does not match"),
        (_with(webhook_signature=None), 1000, "missing webhook-signature"),
        (_with(webhook_id=None, webhook_timestamp=None), 1000, "missing webhook-id, webhook-ti"),
        ({}, 1000, "missing webhook-id, webhook-timestamp, webhook-signature header"),
        # Secret rotation: several signatures, space-separated; one match is enough.
        (_with(webhook_signature=f"v1,AAAA {headers()['webhook-signature']}"), 1000, None),
        ({k.upper(): v for k, v in headers().items()}, 1000, None),  # header names: any case
    ],
)
def test_verify(given: dict[str, str], now_s: int, error: str | None) -> None:
    if error is None:
        assert verify(WHSEC, BODY, given, now_s=now_s) == Verified(MSG, 1000)
    else:
        with pytest.raises(SignatureInvalid, match=error):
            verify(WHSEC, BODY, given, now_s=now_s)


def test_sign_matches_the_library() -> None:
    at = datetime.fromtimestamp(1000, UTC)
    assert sign(KEY, MSG, 1000, BODY) == Webhook(WHSEC).sign(MSG, at, BODY.decode())
    assert sign(KEY, MSG, 1000, BODY) == Webhook(KEY).sign(MSG, at, BODY.decode())


def test_the_openssl_recipe_in_the_docs_computes_the_same_signature(tmp_path: Path) -> None:
    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed")
    recipe = DOCS.read_text().split("<!-- openssl recipe -->", 1)[1]
    script = recipe.split("```sh\n", 1)[1].split("```", 1)[0]
    (tmp_path / "body.json").write_bytes(BODY)
    env = {"PATH": os.environ["PATH"], "SECRET": WHSEC, "ID": MSG, "TS": "1000"}
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=30,
    )
    assert "v1," + done.stdout.strip() == sign(KEY, MSG, 1000, BODY)


def test_the_python_example_in_the_docs_runs(tmp_path: Path) -> None:
    example = DOCS.read_text().split("<!-- python example -->", 1)[1]
    code = example.split("```python\n", 1)[1].split("```", 1)[0]
    stamp = wall_clock_ms() // 1000
    scope: dict[str, object] = {
        "secret": WHSEC,
        "body": BODY,
        "headers": headers(timestamp_s=stamp),
    }
    exec(compile(code, str(DOCS), "exec"), scope)  # our own docs, run as written
    assert scope["payload"] == orjson.loads(BODY)


async def test_channels_by_receiver_type() -> None:
    async with httpx.AsyncClient() as http:
        channels = build_channels(http, 1_000)
    assert {name: channel.name for name, channel in channels.items()} == {
        n: n for n in ("webhook", "slack", "teams", "pagerduty", "alertmanager", "email")
    }
