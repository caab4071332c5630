"""The demo receiver, served for real: prints alerts, answers 200, drops duplicates."""

from __future__ import annotations

import asyncio
import io

import httpx

from services.receiver import format_breach, serve_receiver
from tests.unit.notifier.support import make_breach, unused_port


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


async def test_verifies_signatures_when_given_a_secret() -> None:
    from services.notifier.channels.webhook.signature import sign
    from services.receiver import ReceiverState, receiver_app

    out = io.StringIO()
    now_ms = 1_700_000_000_000
    state = ReceiverState(out, secret="k", clock=lambda: now_ms)
    transport = httpx.ASGITransport(app=receiver_app(state))
    breach = make_breach()
    body = breach.to_json()
    now_s = now_ms // 1000
    async with httpx.AsyncClient(transport=transport, base_url="http://r") as client:

        async def post(signature: str | None, key: str) -> int:
            headers = {"Idempotency-Key": key}
            if signature is not None:
                headers["X-Slawatch-Signature"] = signature
            return (await client.post("/", content=body, headers=headers)).status_code

        codes = [
            await post(sign("k", body, now_s), "a"),
            await post(sign("k", body, now_s - 301), "b"),  # replayed from long ago
            await post(sign("other", body, now_s), "c"),
            await post(None, "d"),
            await post(sign("k", body, now_s - 10), "a"),  # a retry: accepted, not re-printed
        ]
    assert codes == [200, 401, 401, 401, 200]
    lines = out.getvalue().splitlines()
    assert lines[2:] == [
        "rejected /: timestamp outside the replay window",
        "rejected /: signature does not match",
        "rejected /: no signature header",
        "duplicate a (ignored)",
    ]
