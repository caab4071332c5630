"""The pre-standard ``X-Slawatch-Signature`` header, deprecated (pure).

``X-Slawatch-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>." + body)>``.
It is still sent, beside the Standard Webhooks headers, to receivers whose ``secret`` is
a plain (non-``whsec_``) string, so that a receiver checking it keeps working across
the upgrade; a ``whsec_`` secret gets the standard headers only. :func:`verify` stays
for such receivers and for tests; new code uses :mod:`.signature`.
"""

from __future__ import annotations

import hashlib
import hmac

from services.notifier.channels.webhook.signature import DEFAULT_TOLERANCE_S, SignatureInvalid

HEADER = "X-Slawatch-Signature"


def sign(key: bytes, body: bytes, timestamp_s: int) -> str:
    """The header value for ``body`` sent at ``timestamp_s``."""
    digest = hmac.new(key, f"{timestamp_s}.".encode() + body, hashlib.sha256)
    return f"t={timestamp_s},v1={digest.hexdigest()}"


def verify(
    key: bytes,
    body: bytes,
    header: str | None,
    *,
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> int:
    """Check a legacy header; returns its timestamp, raises :class:`SignatureInvalid`."""
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
    expected = sign(key, body, timestamp).split("v1=", 1)[1]
    if not any(hmac.compare_digest(expected, given) for given in fields.get("v1", [])):
        raise SignatureInvalid("signature does not match")
    if abs(now_s - timestamp) > tolerance_s:
        raise SignatureInvalid("timestamp outside the replay window")
    return timestamp
