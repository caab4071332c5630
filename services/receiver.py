"""A local webhook receiver for demos: prints each alert it gets, readably.

``slawatch receiver --port 9000`` runs it; point a ``webhook`` Receiver at
``http://127.0.0.1:9000/``. Any POST path is accepted and answered 200. A request
whose ``webhook-id`` (or, unsigned, ``Idempotency-Key``) was seen before is printed as
a duplicate and not again in full (the notifier retries with the same id).

``--secret whsec_...`` (the value the Receiver's ``spec.secret`` references, or that
reference itself: ``env:NAME``, ``file:NAME`` under the secrets directory) makes it
verify every request the Standard Webhooks way
(:func:`services.notifier.channels.webhook.signature.verify`):
``verified <webhook-id>`` is printed before the alert, and a request that is unsigned,
forged, tampered with or outside the replay window is answered 401 and printed as
``rejected /<path>: <reason>`` (docs/webhooks.md). Example output::

    verified 3f2a…:breach.opened:1764337200000
    2026-11-28T13:40:00.000Z breach.opened page acme-checkout/availability {customer=acme}
        SLI 0.9812 < target 0.999 over 1h, 0.9950 over 5m; breach 3f2a…
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from collections.abc import Iterable, Mapping
from typing import TextIO
from urllib.parse import urlsplit

import orjson
from fastapi import FastAPI, Request, Response

from services.notifier.channels.webhook.channel import parse_breach_body
from services.notifier.channels.webhook.signature import (
    DEFAULT_TOLERANCE_S,
    ID_HEADER,
    SecretInvalid,
    SignatureInvalid,
    SigningKey,
    parse_secret,
    verify,
)
from services.notifier.secrets import Secrets, SecretUnavailable
from shared.definitions.kinds.receivers import Receiver, WebhookReceiverSpec
from shared.definitions.model import Document
from shared.runtime import HttpServer, run_main
from shared.schemas import Breach, WindowSli, group_key
from shared.timeutil import Clock, to_rfc3339, wall_clock_ms

MAX_REMEMBERED_KEYS = 10_000


#: Host names a receiver on this machine is reached by.
LOOPBACK_HOSTS = frozenset({"127.0.0.1", "localhost", "::1"})


def local_ports(documents: Iterable[Document]) -> list[tuple[str, int]]:
    """(receiver name, port) of each ``webhook`` Receiver that posts to this machine
    over plain HTTP: where ``slawatch receiver --port`` would catch its alerts."""
    found: list[tuple[str, int]] = []
    for doc in documents:
        if not isinstance(doc, Receiver) or not isinstance(doc.spec, WebhookReceiverSpec):
            continue
        url = urlsplit(doc.spec.url)  # an env:/file: reference has no host: skipped
        if url.scheme == "http" and url.hostname in LOOPBACK_HOSTS:
            found.append((doc.metadata.name, url.port or 80))
    return found


def _window_text(window: WindowSli) -> str:
    if window.sli is None:
        return f"n/a (target {window.target:g}) over {window.window}"
    relation = "<" if window.sli < window.target else ">="
    return f"{window.sli:.4f} {relation} target {window.target:g} over {window.window}"


def format_breach(breach: Breach) -> str:
    """Two lines: when, what and where; then the SLI against its target and the id."""
    group = "{" + group_key(breach.group) + "}" if breach.group else "{}"
    head = (
        f"{to_rfc3339(breach.at)} {breach.kind} {breach.severity} "
        f"{breach.agreement.name}/{breach.objective} {group}"
    )
    windows = ", ".join(_window_text(w) for w in breach.windows) or "no SLI windows"
    return f"{head}\n    SLI {windows}; breach {breach.id}"


class ReceiverState:
    """Seen idempotency keys (bounded, oldest forgotten first), and the signing key
    (``None``: requests are not verified)."""

    def __init__(
        self,
        out: TextIO,
        max_keys: int = MAX_REMEMBERED_KEYS,
        *,
        secret: SigningKey | None = None,
        clock: Clock = wall_clock_ms,
        tolerance_s: int = DEFAULT_TOLERANCE_S,
    ) -> None:
        self.out = out
        self.max_keys = max_keys
        self.secret = secret
        self.clock = clock
        self.tolerance_s = tolerance_s
        self.seen: OrderedDict[str, None] = OrderedDict()

    def first_time(self, key: str | None) -> bool:
        if key is None:
            return True
        if key in self.seen:
            return False
        self.seen[key] = None
        if len(self.seen) > self.max_keys:
            self.seen.popitem(last=False)
        return True

    def print(self, text: str) -> None:
        print(text, file=self.out, flush=True)


def receiver_app(state: ReceiverState) -> FastAPI:
    """The receiver's app: POST anywhere → print, 200."""
    app = FastAPI(title="slawatch demo receiver", openapi_url=None, docs_url=None)

    @app.post("/{path:path}")
    async def receive(path: str, request: Request) -> Response:
        body = await request.body()
        key = request.headers.get(ID_HEADER) or request.headers.get("idempotency-key")
        if state.secret is not None:
            try:
                key = verify(
                    state.secret,
                    body,
                    request.headers,
                    now_s=state.clock() // 1000,
                    tolerance_s=state.tolerance_s,
                ).id
            except SignatureInvalid as exc:
                state.print(f"rejected /{path}: {exc}")
                return Response(status_code=401)
        if not state.first_time(key):
            state.print(f"duplicate {key} (ignored)")
            return Response(status_code=200)
        if state.secret is not None:
            state.print(f"verified {key}")
        try:
            state.print(format_breach(parse_breach_body(body)))
        except ValueError:  # pydantic's ValidationError and orjson's decode error too
            state.print(_describe_other(path, body))
        return Response(status_code=200)

    return app


def _describe_other(path: str, body: bytes) -> str:
    try:
        parsed = orjson.loads(body)
    except orjson.JSONDecodeError:
        return f"/{path}: {len(body)} bytes, not JSON"
    if isinstance(parsed, dict):
        return f"/{path}: JSON object, not a breach; keys {', '.join(sorted(parsed)[:10])}"
    return f"/{path}: JSON {type(parsed).__name__}, not a breach"


async def serve_receiver(
    host: str, port: int, stop: asyncio.Event, out: TextIO, secret: SigningKey | None = None
) -> None:
    """Serve until ``stop`` is set."""
    server = HttpServer(receiver_app(ReceiverState(out, secret=secret)), host, port)
    serving = asyncio.create_task(server.serve())
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({serving, stopped}, return_when=asyncio.FIRST_COMPLETED)
    server.stop()
    stopped.cancel()
    await serving


def signing_key(secret: str, secrets: Secrets) -> SigningKey:
    """``--secret``'s value: a ``whsec_`` (or deprecated plain) secret, or a reference to
    one (``env:NAME``, ``file:NAME`` under the secrets directory: kept off the command
    line and out of ``ps``).
    Raises :class:`SecretInvalid` with a message fit for the terminal."""
    if secret.startswith(("env:", "file:")):
        try:
            secret = secrets.resolve(secret)
        except SecretUnavailable as exc:
            raise SecretInvalid(str(exc)) from None
    return parse_secret(secret)


def main(
    port: int,
    host: str = "127.0.0.1",
    secret: str | None = None,
    environ: Mapping[str, str] | None = None,
) -> int:
    """``slawatch receiver``: serve until SIGINT/SIGTERM (signatures checked if ``secret``)."""
    import sys

    key = None
    if secret is not None:
        try:
            key = signing_key(secret, Secrets(environ or {}))
        except SecretInvalid as exc:
            print(f"slawatch receiver: --secret: {exc}", file=sys.stderr)
            return 2
        if key.legacy:
            print(
                "slawatch receiver: warning: a plain secret is deprecated (its bytes are the"
                " key); use a whsec_ secret (docs/webhooks.md)",
                file=sys.stderr,
            )
    checking = "verifying Standard Webhooks signatures" if key else "not verifying signatures"
    print(
        f"slawatch receiver listening on http://{host}:{port}/, {checking} (Ctrl-C stops)",
        flush=True,
    )
    return run_main(lambda stop: serve_receiver(host, port, stop, sys.stdout, key))
