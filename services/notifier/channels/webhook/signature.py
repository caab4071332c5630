"""Standard Webhooks 1.0 signatures (pure; docs/webhooks.md explains them to receivers).

Every signed delivery carries three headers::

    webhook-id: <idempotency key>           the same on every retry of one notification
    webhook-timestamp: <unix seconds>       this attempt's send time
    webhook-signature: v1,<base64 HMAC-SHA256(key, "<id>.<timestamp>.<body>")>

``webhook-signature`` may list several space-separated ``v1,<sig>`` (a secret rotation);
one match is enough. A receiver recomputes the HMAC over the raw body, compares in
constant time, and rejects a timestamp further than ``tolerance_s`` from its own clock
(replay window); within the window, a repeated ``webhook-id`` is a duplicate.

Secrets: ``whsec_<base64 of the key>`` (the Standard Webhooks form; the key is the
decoded bytes, 24 to 64 of them). A secret without the prefix is the deprecated plain
form from before the standard: its UTF-8 bytes are the key, so existing receivers keep
verifying, and :class:`SigningKey.legacy` tells the sender to warn and to add the old
``X-Slawatch-Signature`` header too (:mod:`.legacy`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from dataclasses import dataclass

ID_HEADER = "webhook-id"
TIMESTAMP_HEADER = "webhook-timestamp"
SIGNATURE_HEADER = "webhook-signature"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TOLERANCE_S = 300
# Standard Webhooks 1.0 asks for keys of 24 to 64 bytes; shorter ones are refused
# (HMAC would take them, but they are guessable), longer ones are merely unusual.
MIN_KEY_BYTES = 24


class SecretInvalid(ValueError):
    """A configured secret that cannot be used (the message never contains it)."""


class SignatureInvalid(ValueError):
    """Missing, malformed, wrong or too old (the message says which)."""


@dataclass(frozen=True)
class SigningKey:
    """The HMAC key, and whether it came from a deprecated plain (non-``whsec_``) secret."""

    key: bytes
    legacy: bool = False


@dataclass(frozen=True)
class Verified:
    """A delivery whose signature matched: its ``webhook-id`` and ``webhook-timestamp``."""

    id: str
    timestamp_s: int


def parse_secret(secret: str) -> SigningKey:
    """``whsec_<base64>`` → the decoded key; anything else → its UTF-8 bytes, ``legacy``."""
    if not secret:
        raise SecretInvalid("webhook secret is empty")
    if not secret.startswith(SECRET_PREFIX):
        return SigningKey(secret.encode(), legacy=True)
    encoded = secret[len(SECRET_PREFIX) :]
    try:
        # Unpadded base64 is common in copied secrets; the padding carries no bits.
        key = base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    except (binascii.Error, ValueError):
        raise SecretInvalid("webhook secret after whsec_ is not valid base64") from None
    if len(key) < MIN_KEY_BYTES:
        raise SecretInvalid(
            f"webhook secret decodes to {len(key)} bytes; Standard Webhooks needs at least "
            f"{MIN_KEY_BYTES} (generate one: see docs/webhooks.md)"
        )
    return SigningKey(key)


def format_secret(key: bytes) -> str:
    """The ``whsec_`` form of ``key`` (what :func:`parse_secret` reads back)."""
    return SECRET_PREFIX + base64.b64encode(key).decode()


def _digest(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> bytes:
    signed = f"{msg_id}.{timestamp_s}.".encode() + body
    return hmac.new(key, signed, hashlib.sha256).digest()


def _decoded(candidate: str) -> bytes:
    # Compared as bytes, as the reference library does, so any valid base64 spelling
    # of the digest matches; an undecodable candidate simply does not.
    try:
        return base64.b64decode(candidate, validate=True)
    except (binascii.Error, ValueError):
        return b""


def sign(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> str:
    """One ``v1,<base64>`` signature of ``body`` sent as ``msg_id`` at ``timestamp_s``."""
    return "v1," + base64.b64encode(_digest(key, msg_id, timestamp_s, body)).decode()


def signed_headers(key: bytes, msg_id: str, timestamp_s: int, body: bytes) -> dict[str, str]:
    """The three Standard Webhooks headers of one attempt."""
    return {
        ID_HEADER: msg_id,
        TIMESTAMP_HEADER: str(timestamp_s),
        SIGNATURE_HEADER: sign(key, msg_id, timestamp_s, body),
    }


def verify(
    secret: str | SigningKey,
    body: bytes,
    headers: Mapping[str, str],
    *,
    now_s: int,
    tolerance_s: int = DEFAULT_TOLERANCE_S,
) -> Verified:
    """Check a delivery's headers against its raw ``body`` at the receiver's ``now_s``.

    ``secret`` is the configured string (``whsec_...``, or a plain legacy one) or an
    already parsed key; ``headers`` is any mapping, names in any case. Raises
    :class:`SignatureInvalid` (or :class:`SecretInvalid` for an unusable secret).
    """
    key = secret if isinstance(secret, SigningKey) else parse_secret(secret)
    lowered = {name.lower(): value for name, value in headers.items()}
    missing = [h for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER) if not lowered.get(h)]
    if missing:
        raise SignatureInvalid(f"missing {', '.join(missing)} header")
    msg_id, stamp, given = (lowered[h] for h in (ID_HEADER, TIMESTAMP_HEADER, SIGNATURE_HEADER))
    if not stamp.isascii() or not stamp.isdigit():
        raise SignatureInvalid("malformed webhook-timestamp (not unix seconds)")
    timestamp = int(stamp)
    expected = _digest(key.key, msg_id, timestamp, body)
    candidates = [part[3:] for part in given.split(" ") if part.startswith("v1,")]
    if not candidates:
        raise SignatureInvalid("no v1 signature in webhook-signature")
    # Every candidate is compared (no early exit), so timing says nothing about which.
    matched = False
    for candidate in candidates:
        matched |= hmac.compare_digest(expected, _decoded(candidate))
    if not matched:
        raise SignatureInvalid("signature does not match")
    if abs(now_s - timestamp) > tolerance_s:
        raise SignatureInvalid("timestamp outside the replay window")
    return Verified(msg_id, timestamp)
