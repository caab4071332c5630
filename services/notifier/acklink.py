"""Signed, expiring acknowledgement links (pure).

A token is ``<breach id>.<expiry ms>.<signature>`` with the signature
``base64url(HMAC-SHA256(key, "<breach id>.<expiry ms>"))``; the key is shared by every
replica (stored in ``notifier_secrets``). Anyone holding an unexpired link may
acknowledge that one breach and nothing else; a tampered or expired token is refused.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass

DEFAULT_TTL_MS = 7 * 24 * 3_600_000


class BadToken(ValueError):
    """The token is malformed, forged or expired (the message says which)."""


def _sign(key: bytes, material: str) -> str:
    digest = hmac.new(key, material.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).decode().rstrip("=")


@dataclass(frozen=True)
class AckLinks:
    """Makes and checks ack tokens with ``key``; links point at ``base_url``."""

    key: bytes
    base_url: str
    ttl_ms: int = DEFAULT_TTL_MS

    def token(self, breach_id: str, now_ms: int) -> str:
        material = f"{breach_id}.{now_ms + self.ttl_ms}"
        return f"{material}.{_sign(self.key, material)}"

    def url(self, breach_id: str, now_ms: int) -> str:
        return f"{self.base_url.rstrip('/')}/v1/ack/{self.token(breach_id, now_ms)}"

    def status_url(self, breach_id: str) -> str:
        return f"{self.base_url.rstrip('/')}/v1/breaches/{breach_id}"

    def verify(self, token: str, now_ms: int) -> str:
        """The breach id the token acknowledges; raises :class:`BadToken`."""
        parts = token.rsplit(".", 2)  # a breach id may contain dots
        if len(parts) != 3 or not parts[0] or not parts[1].isdigit():
            raise BadToken("malformed token")
        breach_id, expiry, signature = parts
        if not hmac.compare_digest(signature, _sign(self.key, f"{breach_id}.{expiry}")):
            raise BadToken("bad signature")
        if now_ms >= int(expiry):
            raise BadToken("link expired")
        return breach_id
