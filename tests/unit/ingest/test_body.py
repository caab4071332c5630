"""The bounded body reader stops at the limit instead of buffering everything."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from services.ingest.body import declared_too_large, read_limited
from services.ingest.exceptions import BodyTooLargeError


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
