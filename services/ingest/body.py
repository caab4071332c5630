"""Reading a request body without buffering more than the limit.

``max_body_bytes`` bounds the body *as the parser sees it*: for ``Content-Encoding:
gzip`` the decompressed size (and so the compressed size, which is never larger for
an accepted body). Decompression is streamed and each step asks zlib for at most the
bytes still allowed, so a gzip bomb costs at most ``limit`` bytes of memory before it
is refused (413), however far it would expand.
"""

from __future__ import annotations

import zlib
from collections.abc import AsyncIterable

from services.ingest.exceptions import BodyTooLargeError, InvalidEncodingError

GZIP_CODINGS = ("gzip", "x-gzip")
IDENTITY_CODINGS = ("", "identity")


def declared_too_large(content_length: str | None, limit: int) -> bool:
    """True when the Content-Length header alone already exceeds the limit."""
    if content_length is None or not content_length.strip().isdigit():
        return False
    return int(content_length) > limit


async def read_limited(chunks: AsyncIterable[bytes], limit: int) -> bytes:
    """Concatenate ``chunks``; raise :class:`BodyTooLargeError` as soon as more than
    ``limit`` bytes arrived (at most one chunk past the limit is ever held)."""
    parts: list[bytes] = []
    size = 0
    async for chunk in chunks:
        size += len(chunk)
        if size > limit:
            raise BodyTooLargeError(limit)
        parts.append(chunk)
    return b"".join(parts)


class _GzipStream:
    """Incremental gzip decoder (several concatenated members allowed, RFC 1952)
    that refuses to produce more than ``limit`` bytes."""

    def __init__(self, limit: int) -> None:
        self._limit = limit
        self._size = 0
        self._parts: list[bytes] = []
        self._decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
        self._started = False

    def feed(self, data: bytes) -> None:
        while data:
            self._started = True
            if self._decoder.eof:
                data = self._decoder.unused_data + data
                self._decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
            try:
                out = self._decoder.decompress(data, self._limit - self._size + 1)
            except zlib.error as exc:
                raise InvalidEncodingError(f"body is not valid gzip: {exc}") from None
            self._keep(out)
            data = self._decoder.unconsumed_tail
            if self._decoder.eof and self._decoder.unused_data:
                data = self._decoder.unused_data + data
                self._decoder = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)

    def _keep(self, out: bytes) -> None:
        self._size += len(out)
        if self._size > self._limit:
            raise BodyTooLargeError(self._limit)
        self._parts.append(out)

    def finish(self) -> bytes:
        if self._started and not self._decoder.eof:
            raise InvalidEncodingError("body is not valid gzip: truncated stream")
        return b"".join(self._parts)


async def read_decoded(chunks: AsyncIterable[bytes], coding: str, limit: int) -> bytes:
    """The body after its content coding (identity or gzip), at most ``limit`` bytes.

    Raises :class:`BodyTooLargeError` (413) or :class:`InvalidEncodingError` (400)."""
    if coding in IDENTITY_CODINGS:
        return await read_limited(chunks, limit)
    stream = _GzipStream(limit)
    received = 0
    async for chunk in chunks:
        received += len(chunk)
        if received > limit:
            raise BodyTooLargeError(limit)
        stream.feed(chunk)
    return stream.finish()
