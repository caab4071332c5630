"""Time is integer milliseconds since the Unix epoch (UTC) everywhere inside slawatch."""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], int]

_DURATION = re.compile(r"^(\d+)(ms|s|m|h|d|w)$")
_UNIT_MS = {"ms": 1, "s": 1_000, "m": 60_000, "h": 3_600_000, "d": 86_400_000, "w": 604_800_000}


def wall_clock_ms() -> int:
    """The real clock; pass it where a ``Clock`` is expected."""
    return time.time_ns() // 1_000_000


def parse_duration_ms(text: str) -> int:
    """``"5m"`` → 300000. Units: ms, s, m, h, d, w."""
    match = _DURATION.match(text.strip())
    if match is None:
        raise ValueError(f"invalid duration {text!r}: use a number and a unit (ms, s, m, h, d, w)")
    return int(match.group(1)) * _UNIT_MS[match.group(2)]


def format_duration(ms: int) -> str:
    """The shortest exact spelling: 300000 → ``"5m"``."""
    for unit in ("w", "d", "h", "m", "s"):
        size = _UNIT_MS[unit]
        if ms and ms % size == 0:
            return f"{ms // size}{unit}"
    return f"{ms}ms"


def parse_time_ms(value: object) -> int:
    """Epoch milliseconds from an integer (epoch ms) or an RFC 3339 string."""
    if isinstance(value, bool):
        raise ValueError("time must be RFC 3339 text or epoch milliseconds, not a boolean")
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        if value != value or value in (float("inf"), float("-inf")):
            raise ValueError("time must be finite")
        return int(value)
    if isinstance(value, str):
        text = value.strip()
        if text.endswith(("Z", "z")):
            text = text[:-1] + "+00:00"
        try:
            parsed = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(f"invalid RFC 3339 time {value!r}") from None
        if parsed.tzinfo is None:
            raise ValueError(f"time {value!r} has no UTC offset")
        return int(parsed.timestamp() * 1000)
    raise ValueError("time must be RFC 3339 text or epoch milliseconds")


def rfc3339_or_none(ms: int | None) -> str | None:
    """:func:`to_rfc3339` of a time that may be absent."""
    return None if ms is None else to_rfc3339(ms)


def to_rfc3339(ms: int) -> str:
    """``1700000000000`` → ``"2023-11-14T22:13:20.000Z"``."""
    return (
        datetime.fromtimestamp(ms / 1000, tz=UTC)
        .isoformat(timespec="milliseconds")
        .replace("+00:00", "Z")
    )
