"""The demo receiver, served for real: prints alerts, answers 200, drops duplicates, and
with a secret verifies real deliveries (401 and the reason otherwise)."""

from __future__ import annotations

import asyncio
import io
from typing import Any

import httpx
import pytest

from services import cli
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.channels.webhook.signature import (
    SecretInvalid,
    SigningKey,
    format_secret,
    parse_secret,
    signed_headers,
)
from services.notifier.message import simple
from services.notifier.secrets import Secrets
from services.receiver import format_breach, serve_receiver, signing_key
from shared.timeutil import wall_clock_ms
from tests.unit.notifier.support import make_breach, unused_port
from tests.unit.notifier.test_channel_conformance import receiver


def test_format_breach() -> None:
    text = format_breach(make_breach())
    head, detail = text.splitlines()
    assert head == (
        "2023-11-14T22:13:20.000Z breach.opened page acme-checkout/availability {customer=acme}"
    )
    assert detail == (
        "    SLI 0.9800 < target 0.999 over 1h; breach 0123456789abcdef0123456789abcdef"
    )


async def test_serves_prints_and_ignores_duplicates() -> None:
    port = unused_port()
    out = io.StringIO()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_receiver("127.0.0.1", port, stop, out))
    breach = make_breach()
    url = f"http://127.0.0.1:{port}/any/path"
    headers = {"Idempotency-Key": breach.event_key, "Content-Type": "application/json"}
    try:
        async with httpx.AsyncClient() as client:
            async with asyncio.timeout(5):
                while True:  # until the server listens
                    try:
                        first = await client.post(url, content=breach.to_json(), headers=headers)
                        break
                    except httpx.ConnectError:
                        await asyncio.sleep(0.02)
            second = await client.post(url, content=breach.to_json(), headers=headers)
            other = await client.post(f"http://127.0.0.1:{port}/", content=b'{"hello": 1}')
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert (first.status_code, second.status_code, other.status_code) == (200, 200, 200)
    lines = out.getvalue().splitlines()
    assert lines[0].startswith("2023-11-14T22:13:20.000Z breach.opened page")
    assert lines[2] == f"duplicate {breach.event_key} (ignored)"
    assert lines[3] == "/: JSON object, not a breach; keys hello"
    assert len(lines) == 4


KEY = bytes(range(32))


async def _serving(secret: SigningKey | None, out: io.StringIO) -> tuple[str, asyncio.Event, Any]:
    port = unused_port()
    stop = asyncio.Event()
    task = asyncio.create_task(serve_receiver("127.0.0.1", port, stop, out, secret))
    url = f"http://127.0.0.1:{port}/"
    async with httpx.AsyncClient() as client, asyncio.timeout(5):
        while True:  # until the server listens
            try:
                await client.get(url)
                break
            except httpx.ConnectError:
                await asyncio.sleep(0.02)
    return url, stop, task


async def test_verifies_real_deliveries_the_standard_way() -> None:
    out = io.StringIO()
    url, stop, task = await _serving(parse_secret(format_secret(KEY)), out)
    breach = make_breach()
    body = breach.to_json()
    now_s = wall_clock_ms() // 1000
    environ = {"SLAWATCH_SECRET_HOOK": format_secret(KEY)}
    target = receiver(
        "hook", {"type": "webhook", "url": url + "hook", "secret": "env:SLAWATCH_SECRET_HOOK"}
    )
    try:
        async with httpx.AsyncClient() as client:
            channel = WebhookChannel(client, timeout_ms=5_000, secrets=Secrets(environ))
            delivered = await channel.deliver(simple(breach), target)
            retried = await channel.deliver(simple(breach), target)

            async def post(headers: dict[str, str], content: bytes = body) -> int:
                return (
                    await client.post(url + "hook", content=content, headers=headers)
                ).status_code

            signed = signed_headers(KEY, "k2", now_s, body)
            codes = [
                await post(signed, body.replace(b"acme", b"acmf")),  # tampered with
                await post(signed_headers(KEY, "k3", now_s - 301, body)),  # replayed later
                await post(signed_headers(bytes(32), "k4", now_s, body)),  # another secret
                await post({"webhook-id": "k5"}),  # unsigned
            ]
    finally:
        stop.set()
        await asyncio.wait_for(task, 5)
    assert (delivered.status_code, retried.status_code) == (200, 200)
    assert codes == [401, 401, 401, 401]
    lines = out.getvalue().splitlines()
    assert lines[0] == f"verified {breach.event_key}"
    assert lines[1].startswith("2023-11-14T22:13:20.000Z breach.opened page")
    assert lines[3:] == [
        f"duplicate {breach.event_key} (ignored)",  # the retry: same webhook-id
        "rejected /hook: signature does not match",
        "rejected /hook: timestamp outside the replay window",
        "rejected /hook: signature does not match",
        "rejected /hook: missing webhook-timestamp, webhook-signature header",
    ]


@pytest.mark.parametrize(
    ("secret", "environ", "want"),
    [
        (format_secret(KEY), {}, SigningKey(KEY)),
        ("env:SLAWATCH_SECRET_R", {"SLAWATCH_SECRET_R": format_secret(KEY)}, SigningKey(KEY)),
        ("plain", {}, SigningKey(b"plain", legacy=True)),
        ("whsec_%%%", {}, "not valid base64"),
        ("env:SLAWATCH_SECRET_R", {}, "SLAWATCH_SECRET_R is not set"),
    ],
)
def test_signing_key_from_the_command_line(
    secret: str, environ: dict[str, str], want: SigningKey | str
) -> None:
    if isinstance(want, SigningKey):
        assert signing_key(secret, Secrets(environ)) == want
    else:
        with pytest.raises(SecretInvalid, match=want):
            signing_key(secret, Secrets(environ))


def test_cli_refuses_an_unusable_secret(capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["receiver", "--port", "9", "--secret", "whsec_AAAA"]) == 2
    assert "--secret: webhook secret decodes to 3 bytes" in capsys.readouterr().err
