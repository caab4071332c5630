"""HMAC-SHA256 webhook signatures (pure; docs/webhooks.md explains them to receivers).

Header ``X-Slawatch-Signature: t=<unix seconds>,v1=<hex digest>`` where the digest is
``HMAC-SHA256(secret, "<t>." + body)``. A receiver recomputes it over the raw body,
compares in constant time, and rejects a ``t`` further than ``tolerance_s`` from its
own clock (replay window); within the window, ``Idempotency-Key`` drops repeats.
"""

from __future__ import annotations

import hashlib
import hmac

HEADER = "X-Slawatch-Signature"
DEFAULT_TOLERANCE_S = 300


class SignatureInvalid(ValueError):
    """Missing, malformed, wrong or too old (the message says which)."""


def sign(secret: str, body: bytes, timestamp_s: int) -> str:
    """The header value for ``body`` sent at ``timestamp_s``."""
    digest = hmac.new(secret.encode(), f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"t={timestamp_s},v1={digest.hexdigest()}"


def verify(
    secret: str,
    body: bytes,
    header: str | None,
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a signature header; returns its timestamp, raises :class:`SignatureInvalid`."""
    if not header:
        raise SignatureInvalid("no signature header")
    fields: dict[str, list[str]] = {}
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        fields.setdefault(name, []).append(value)
    stamps = fields.get("t", [])
    if len(stamps) != 1 or not stamps[0].isdigit():
        raise SignatureInvalid("malformed signature header")
    timestamp = int(stamps[0])
    expected = sign(secret, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, given) for given in fields.get("v1", [])):
        raise SignatureInvalid("signature does not match")
    if abs(now_s - timestamp) > tolerance_s:
        raise SignatureInvalid("timestamp outside the replay window")
    return timestamp
