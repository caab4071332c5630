"""Test helpers for the notifier: a real local HTTP server that records requests and
answers with scripted status codes, and a breach factory."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import uvicorn

from services.notifier.channels.destinations import Outbound
from shared.outbound import LOOPBACK
from shared.schemas import AgreementRef, Breach, WindowSli

T0 = 1_700_000_000_000


def make_breach(**overrides: Any) -> Breach:
    values: dict[str, Any] = {
        "id": "0123456789abcdef0123456789abcdef",
        "kind": "breach.opened",
        "at": T0,
        "agreement": AgreementRef(
            name="acme-checkout", type="SLA", provider="shopco", consumer="acme"
        ),
        "objective": "availability",
        "objective_id": "acme-checkout/availability",
        "service": "checkout",
        "group": {"customer": "acme"},
        "rule": "threshold",
        "severity": "page",
        "windows": [WindowSli(window="1h", sli=0.98, target=0.999, good=98, valid=100)],
        "opened_at": T0,
        "detected_at": T0 + 50,
        "labels": {"team": "payments"},
    }
    values.update(overrides)
    return Breach(**values)


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    body: bytes


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


def unused_port() -> int:
    """A port nothing listens on right now (bound and released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass
class RecordingServer:
    """Answers each request with the next scripted status (then ``default``), after
    ``delay_s``; ``headers`` are added to every response."""

    statuses: list[int] = field(default_factory=list)
    default: int = 200
    delay_s: float = 0.0
    headers: dict[str, str] = field(default_factory=dict)
    requests: list[Request] = field(default_factory=list)
    port: int = 0
    body: bytes = b"ok"

    def __post_init__(self) -> None:
        self._changed = asyncio.Condition()
        self._socket: socket.socket | None = None
        self._server: _Server | None = None
        self._task: asyncio.Task[None] | None = None

    @property
    def url(self) -> str:
        assert self._socket is not None
        host, port = self._socket.getsockname()[:2]
        return f"http://{host}:{port}/hook"

    async def app(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        status = self.statuses.pop(0) if self.statuses else self.default
        async with self._changed:
            self.requests.append(Request(scope["method"], scope["path"], headers, body))
            self._changed.notify_all()
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a slow receiver, on purpose
        response_headers = [(k.encode(), v.encode()) for k, v in self.headers.items()]
        await send({"type": "http.response.start", "status": status, "headers": response_headers})
        await send({"type": "http.response.body", "body": self.body})

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Request]:
        """Until ``count`` requests arrived (bounded)."""
        async with asyncio.timeout(timeout_s), self._changed:
            await self._changed.wait_for(lambda: len(self.requests) >= count)
        return list(self.requests)

    async def __aenter__(self) -> RecordingServer:
        self._socket = socket.socket()
        self._socket.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._socket.bind(("127.0.0.1", self.port))
        config = uvicorn.Config(
            self.app,
            interface="asgi3",
            log_config=None,
            access_log=False,
            lifespan="off",
            timeout_graceful_shutdown=1,
        )
        self._server = _Server(config)
        self._task = asyncio.create_task(self._server.serve(sockets=[self._socket]))
        async with asyncio.timeout(5):
            while not self._server.started:
                await asyncio.sleep(0.005)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._server is not None and self._task is not None and self._socket is not None
        self._server.should_exit = True
        await self._task
        self._socket.close()


@dataclass
class SmtpServer:
    """A real SMTP server (aiosmtpd, in its own thread) answering DATA with the next
    scripted reply (then ``default``), after ``delay_s``; accepts any AUTH. With
    ``tls`` (an ``ssl.SSLContext``) it offers STARTTLS, or with ``implicit`` speaks TLS
    from the first byte."""

    replies: list[str] = field(default_factory=list)
    default: str = "250 OK"
    delay_s: float = 0.0
    tls: Any = None
    implicit: bool = False
    messages: list[Any] = field(default_factory=list)
    logins: list[tuple[str, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = unused_port()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._arrived: asyncio.Condition | None = None
        self._controller: Any = None

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)  # a slow server, on purpose
        reply = self.replies.pop(0) if self.replies else self.default
        if reply.startswith("250"):
            import email
            import email.policy

            message = email.message_from_bytes(
                envelope.original_content, policy=email.policy.default
            )
            assert self._loop is not None
            self._loop.call_soon_threadsafe(self._add, message)
        return reply

    def _add(self, message: Any) -> None:
        async def notify() -> None:
            assert self._arrived is not None
            async with self._arrived:
                self.messages.append(message)
                self._arrived.notify_all()

        assert self._loop is not None
        self._loop.create_task(notify())

    def _authenticate(
        self, server: Any, session: Any, envelope: Any, mechanism: str, auth_data: Any
    ) -> Any:
        from aiosmtpd.smtp import AuthResult, LoginPassword

        if isinstance(auth_data, LoginPassword):
            self.logins.append((auth_data.login.decode(), auth_data.password.decode()))
        return AuthResult(success=True)

    async def wait_for(self, count: int, timeout_s: float = 10.0) -> list[Any]:
        assert self._arrived is not None
        async with asyncio.timeout(timeout_s), self._arrived:
            await self._arrived.wait_for(lambda: len(self.messages) >= count)
        return list(self.messages)

    async def __aenter__(self) -> SmtpServer:
        from aiosmtpd.controller import Controller

        self._loop = asyncio.get_running_loop()
        self._arrived = asyncio.Condition()
        kwargs: dict[str, Any] = {
            "authenticator": self._authenticate,
            "auth_require_tls": False,
        }
        if self.tls is not None and self.implicit:
            kwargs["ssl_context"] = self.tls
        elif self.tls is not None:
            kwargs["tls_context"] = self.tls
        self._controller = Controller(self, hostname="127.0.0.1", port=self.port, **kwargs)
        await asyncio.to_thread(self._controller.start)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await asyncio.to_thread(self._controller.stop)


def self_signed_context(directory: Any) -> Any:
    """A server TLS context with a fresh self-signed certificate (openssl CLI)."""
    import ssl
    import subprocess

    cert, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=127.0.0.1", "-keyout", str(key), "-out", str(cert),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


LOCAL = Outbound(LOOPBACK)
"""The outbound policy of the tests' scripted servers: loopback allowed, as the suite
allows it (``SLAWATCH_OUTBOUND_ALLOW``); everything else as in production."""
