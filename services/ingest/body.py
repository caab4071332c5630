"""Reading a request body without buffering more than the limit."""

from __future__ import annotations

from collections.abc import AsyncIterable

from services.ingest.exceptions import BodyTooLargeError


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
