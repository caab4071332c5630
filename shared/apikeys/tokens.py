"""Keys and their digests (pure).

A key is ``sw_`` + 43 url-safe characters (32 random bytes, 256 bits). Only its
SHA-256 digest is stored: a key has full entropy, so a fast hash is enough (no
password stretching needed) and a leaked table gives no usable key.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets

PREFIX = "sw_"
_SHAPE = re.compile(r"^sw_[A-Za-z0-9_-]{43}$")


def new_key() -> str:
    """A fresh random key, to be shown once."""
    return PREFIX + secrets.token_urlsafe(32)


def well_formed(key: str) -> bool:
    """The shape :func:`new_key` makes (checked before any lookup)."""
    return bool(_SHAPE.match(key))


def digest(key: str) -> str:
    """What the database keeps: the hex SHA-256 of the key."""
    return hashlib.sha256(key.encode()).hexdigest()


def same_digest(a: str, b: str) -> bool:
    """Constant-time comparison of two digests."""
    return hmac.compare_digest(a.encode(), b.encode())
