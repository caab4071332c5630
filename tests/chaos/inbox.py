"""The chaos suite's webhook receivers: a real HTTP server on loopback that records
every request it gets, duplicates included; a receiver can be made to hang.

One server holds both receivers of the scripted definitions (``/ops``, signed, and
``/team``); a request is recorded with its idempotency key, a digest of its body,
whether its signature verified, and when it arrived and was answered (monotonic
seconds of the test process, the clock the fault log uses). Each answer is held back
``answer_delay_s`` so that a notifier killed "now" has a request in flight, as a
real receiver on a network would.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import time
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI, Request, Response
from standardwebhooks import Webhook, WebhookVerificationError

from shared.embedded import free_port
from shared.runtime import HttpServer
from tests.chaos.script import OPS_PATH, TEAM_PATH

#: The Standard Webhooks form (``whsec_`` + base64 of the key bytes).
SECRET = "whsec_" + base64.b64encode(b"chaos-suite-signing-key-32-bytes").decode()
LEGACY_HEADER = "x-slawatch-signature"
TOLERANCE_S = 300
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
    arrived_wall: float
    answered: float | None = None


class Inbox:
    """Every request of both receivers, in arrival order; waiters get notified."""

    def __init__(self, answer_delay_s: float = 0.02) -> None:
        self.answer_delay_s = answer_delay_s
        self.requests: list[Received] = []
        self.changed = asyncio.Condition()
        #: Receivers that hang: their requests get no answer until the event is set.
        self.hanging: dict[str, asyncio.Event] = {}

    def hang(self, receiver: str) -> None:
        self.hanging[receiver] = asyncio.Event()

    def recover(self, receiver: str) -> None:
        self.hanging.pop(receiver).set()

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
            signature_ok = _verified(body, request.headers) if receiver == "ops-hook" else None
            entry = Received(
                receiver=receiver,
                key=request.headers.get("idempotency-key") or request.headers.get("webhook-id", ""),
                kind=request.headers.get("x-slawatch-kind", ""),
                digest=hashlib.sha256(body).hexdigest(),
                signature_ok=signature_ok,
                arrived=time.monotonic(),
                arrived_wall=time.time(),
            )
            async with self.changed:
                self.requests.append(entry)
                self.changed.notify_all()
            # Held back on purpose: a kill of the notifier now finds this request in flight.
            await asyncio.sleep(self.answer_delay_s)
            if receiver in self.hanging:
                await self.hanging[receiver].wait()
            async with self.changed:
                entry.answered = time.monotonic()
                self.changed.notify_all()
            # Always 200, signed or not: a 401 would end the delivery as dead, and the
            # comparison would report it lost; the bad signature is counted instead.
            return Response(status_code=200)

        return app


def _verified(body: bytes, headers: Mapping[str, str]) -> bool:
    """Standard Webhooks 1.0 (``webhook-*`` headers), checked with the reference library
    rather than the project's own code; or, from a sender that signs only the older
    way, ``X-Slawatch-Signature`` as docs/webhooks.md gives it to receivers."""
    if "webhook-signature" in headers:
        try:
            Webhook(SECRET).verify(body, dict(headers), json_parse=False)
        except WebhookVerificationError:
            return False
        return True
    header = headers.get(LEGACY_HEADER)
    if not header:
        return False
    fields = [part.strip().partition("=") for part in header.split(",")]
    stamps = [value for key, _, value in fields if key == "t"]
    given = [value for key, _, value in fields if key == "v1"]
    if len(stamps) != 1 or not stamps[0].isdigit():
        return False
    expected = hmac.new(SECRET.encode(), stamps[0].encode() + b"." + body, hashlib.sha256)
    matches = any(hmac.compare_digest(expected.hexdigest(), v) for v in given)
    return matches and abs(time.time() - int(stamps[0])) <= TOLERANCE_S


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
