"""The request-body size limit, applied while the body is read (pure ASGI).

FastAPI reads a JSON body whole before validating it, so a size check in a route comes
too late: a 30 MB body would already be in memory. :class:`BodyLimit` sits in front of
the app and

- answers 413 (``urn:slawatch:problem:body-too-large``) at once when the declared
  ``Content-Length`` is over the limit, without reading any of the body;
- counts the bytes as ``receive()`` yields them and, as soon as the count passes the
  limit, stops passing them on, answers 413 and tells the app the client went away
  (``http.disconnect``): the app never holds more than the limit plus one chunk.

The part of the body the client already sent is taken in and dropped chunk by chunk
(never kept) before the 413 goes out, up to ``drain_bytes`` (default 32 MiB) in all:
a client that writes its whole body before reading (httpx, most libraries) sees the
413 only then; were the connection closed with its data unread, the kernel would
reset it and the client would see a broken connection instead. A client that sends
``Expect: 100-continue`` (curl does for large bodies) gets the 413 at once and never
sends the body. Past ``drain_bytes`` the connection is simply closed.

Timeline of a chunked 3 MiB body under a 1 MiB limit::

    receive → 64 KiB … receive → 1 MiB + 64 KiB  (count > limit: the app gets no more)
              receive → dropped … until the body ends (or drain_bytes)
              413 sent; the app's next receive() is http.disconnect and
              whatever it answers to the cut-off request is dropped

The limit counts bytes on the wire (before any content coding is undone); routes that
decode (ingest's gzip intake) keep their own, tighter check on the decoded size, so
ingest installs a larger wire limit than its own (``services/ingest/api.py``).
"""

from __future__ import annotations

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from shared.http.problems import Problem, response, title_of

#: the unread rest of the body is still on the connection: it cannot be reused
_CLOSE = {"Connection": "close"}

#: Default for every service: larger than any definition, receiver or ack body.
DEFAULT_MAX_BODY_BYTES = 1024 * 1024
#: How much of a refused body is read and dropped so the client can read its 413.
DEFAULT_DRAIN_BYTES = 32 * 1024 * 1024
SLUG = "body-too-large"


def too_large(limit: int) -> Problem:
    """The 413 problem for a body over ``limit`` bytes."""
    return Problem(413, SLUG, title_of(413), f"the request body is over {limit} bytes", None)


def declared_length(headers: list[tuple[bytes, bytes]]) -> int | None:
    """The ``Content-Length``, if any (a malformed one is left to the server, which
    refuses it before the app)."""
    for name, value in headers:
        if name.lower() == b"content-length":
            text = value.strip()
            return int(text) if text.isdigit() else None
    return None


def expects_continue(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(n.lower() == b"expect" and v.strip().lower() == b"100-continue" for n, v in headers)


async def drain(receive: Receive, budget: int) -> None:
    """Read and drop the rest of the body, at most ``budget`` bytes (module docstring)."""
    while budget > 0:
        message = await receive()
        if message["type"] != "http.request":
            return
        budget -= len(message.get("body", b""))
        if not message.get("more_body", False):
            return


class BodyLimit:
    """ASGI middleware: no request body over ``max_body_bytes`` reaches the app (module
    docstring)."""

    def __init__(
        self,
        app: ASGIApp,
        max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
        drain_bytes: int = DEFAULT_DRAIN_BYTES,
    ) -> None:
        if max_body_bytes < 0 or drain_bytes < 0:
            raise ValueError("max_body_bytes and drain_bytes must be >= 0")
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.drain_bytes = drain_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        headers = scope.get("headers", [])
        declared = declared_length(headers)
        if declared is not None and declared > limit:
            # a body that would not fit the drain is not waited for: the client is cut
            if not expects_continue(headers) and declared <= self.drain_bytes:
                await drain(receive, self.drain_bytes)
            await response(too_large(limit), _CLOSE)(scope, receive, send)
            return
        await _Guard(self.app, scope, limit, self.drain_bytes, receive, send).run()


class _Guard:
    """One request's count, and whether the 413 has been answered in the app's place."""

    def __init__(
        self, app: ASGIApp, scope: Scope, limit: int, drain_bytes: int, receive: Receive, send: Send
    ) -> None:
        self._app = app
        self._scope = scope
        self._limit = limit
        self._drain_bytes = drain_bytes
        self._receive = receive
        self._send = send
        self._count = 0
        self._started = False
        #: the body was cut at the limit (the app now sees a disconnected client)
        self._cut = False
        #: the 413 went out in the app's place (the app's own answer is dropped)
        self._answered = False

    async def run(self) -> None:
        try:
            await self._app(self._scope, self.receive, self.send)
        except ClientDisconnect:
            # A route reading request.stream() itself sees the disconnect we made up;
            # the client has its 413, so this is not an error.
            if not self._cut:
                raise

    async def receive(self) -> Message:
        if self._cut:
            return {"type": "http.disconnect"}
        message = await self._receive()
        if message["type"] != "http.request":
            return message
        self._count += len(message.get("body", b""))
        if self._count <= self._limit:
            return message
        self._cut = True
        if message.get("more_body", False):
            await drain(self._receive, self._drain_bytes - self._count)
        if not self._started:
            # sent through the server's own send, past the filter in :meth:`send`
            self._answered = True
            await response(too_large(self._limit), _CLOSE)(self._scope, self._receive, self._send)
        return {"type": "http.disconnect"}

    async def send(self, message: Message) -> None:
        if self._answered:
            # the app's answer to a body it never fully got: the client already has 413
            return
        if message["type"] == "http.response.start":
            self._started = True
        await self._send(message)
