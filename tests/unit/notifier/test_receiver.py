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
