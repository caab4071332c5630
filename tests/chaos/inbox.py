"""The chaos suite's webhook receivers: a real HTTP server on loopback that records
every request it gets, duplicates included.

One server holds both receivers of the scripted definitions (``/ops``, signed, and
``/team``); a request is recorded with its idempotency key, a digest of its body,
whether its signature verified, and when it arrived and was answered (monotonic
seconds of the test process, the clock the fault log uses). Each answer is held back
``answer_delay_s`` so that a notifier killed "now" has a request in flight, as a
real receiver on a network would.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response

from services.notifier.channels.webhook.signature import SignatureInvalid, verify
from shared.embedded import free_port
from shared.runtime import HttpServer
from tests.chaos.script import OPS_PATH, TEAM_PATH

SECRET = "chaos-suite-signing-secret-0123456789"
RECEIVERS = {OPS_PATH: "ops-hook", TEAM_PATH: "team-hook"}


@dataclass
class Received:
    """One HTTP request as the receiver saw it."""

    receiver: str
    key: str
    kind: str
    digest: str
    signature_ok: bool | None
    arrived: float
    answered: float | None = None


class Inbox:
    """Every request of both receivers, in arrival order; waiters get notified."""

    def __init__(self, answer_delay_s: float = 0.02) -> None:
        self.answer_delay_s = answer_delay_s
        self.requests: list[Received] = []
        self.changed = asyncio.Condition()

    def in_flight(self) -> list[Received]:
        return [r for r in self.requests if r.answered is None]

    def keys(self) -> dict[str, set[str]]:
        found: dict[str, set[str]] = {name: set() for name in RECEIVERS.values()}
        for request in self.requests:
            found[request.receiver].add(request.key)
        return found

    async def wait_for(self, predicate: object, timeout_s: float) -> None:
        assert callable(predicate)
        async with asyncio.timeout(timeout_s), self.changed:
            await self.changed.wait_for(lambda: bool(predicate()))

    def app(self) -> FastAPI:
        app = FastAPI(openapi_url=None, docs_url=None, redoc_url=None)

        @app.post("/{path:path}")
        async def receive(path: str, request: Request) -> Response:
            body = await request.body()
            receiver = RECEIVERS.get(f"/{path}", f"/{path}")
            signature_ok: bool | None = None
            if receiver == "ops-hook":
                try:
                    verify(
                        SECRET, body, request.headers.get("x-slawatch-signature"), int(time.time())
                    )
                    signature_ok = True
                except SignatureInvalid:
                    signature_ok = False
            entry = Received(
                receiver=receiver,
                key=request.headers.get("idempotency-key", ""),
                kind=request.headers.get("x-slawatch-kind", ""),
                digest=hashlib.sha256(body).hexdigest(),
                signature_ok=signature_ok,
                arrived=time.monotonic(),
            )
            async with self.changed:
                self.requests.append(entry)
                self.changed.notify_all()
            # Held back on purpose: a kill of the notifier now finds this request in flight.
            await asyncio.sleep(self.answer_delay_s)
            async with self.changed:
                entry.answered = time.monotonic()
                self.changed.notify_all()
            # Always 200, signed or not: a 401 would end the delivery as dead, and the
            # comparison would report it lost; the bad signature is counted instead.
            return Response(status_code=200)

        return app


@asynccontextmanager
async def serving_inbox(answer_delay_s: float = 0.02) -> AsyncIterator[tuple[Inbox, str]]:
    """A started inbox and its base URL (``http://127.0.0.1:<port>``)."""
    inbox = Inbox(answer_delay_s)
    port = free_port()
    server = HttpServer(inbox.app(), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    try:
        await asyncio.wait_for(server.started(), 10)
        yield inbox, f"http://127.0.0.1:{port}"
    finally:
        server.stop()
        await task
