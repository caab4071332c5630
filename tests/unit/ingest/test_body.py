"""The bounded body reader stops at the limit instead of buffering everything."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.ingest.body import declared_too_large, read_decoded, read_limited
from services.ingest.exceptions import BodyTooLargeError, InvalidEncodingError


async def chunks(sizes: list[int], pulled: list[int]) -> AsyncIterator[bytes]:
    for size in sizes:
        pulled.append(size)
        yield b"x" * size


async def test_reads_up_to_the_limit() -> None:
    assert await read_limited(chunks([3, 3, 4], []), 10) == b"x" * 10


async def test_stops_at_the_first_chunk_past_the_limit() -> None:
    pulled: list[int] = []
    with pytest.raises(BodyTooLargeError):
        await read_limited(chunks([6, 6, 6, 6], pulled), 10)
    assert pulled == [6, 6]


@pytest.mark.parametrize(
    ("header", "too_large"),
    [(None, False), ("10", False), ("11", True), ("junk", False), (" 99 ", True)],
)
def test_declared_length(header: str | None, too_large: bool) -> None:
    assert declared_too_large(header, 10) is too_large


async def test_gzip_is_decoded_across_chunks_and_members() -> None:
    import gzip

    data = gzip.compress(b"hello ") + gzip.compress(b"world")

    async def split() -> AsyncIterator[bytes]:
        for i in range(0, len(data), 7):
            yield data[i : i + 7]

    assert await read_decoded(split(), "gzip", 100) == b"hello world"


async def test_gzip_bomb_stops_at_the_limit() -> None:
    import gzip

    bomb = gzip.compress(b"\0" * 100_000_000)  # ~100 KB that would inflate to 100 MB

    async def once() -> AsyncIterator[bytes]:
        yield bomb

    with pytest.raises(BodyTooLargeError):
        await read_decoded(once(), "gzip", 1_000_000)


@pytest.mark.parametrize("data", [b"junk", b"\x1f\x8b\x08\x00"])
async def test_invalid_or_truncated_gzip(data: bytes) -> None:
    async def once() -> AsyncIterator[bytes]:
        yield data

    with pytest.raises(InvalidEncodingError):
        await read_decoded(once(), "gzip", 100)
