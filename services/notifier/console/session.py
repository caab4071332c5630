"""Console sessions and CSRF tokens (pure: the clock and the secret are passed in).

A session cookie is ``<claims>.<signature>``: the claims (base64url JSON) name the
API key (its name and SHA-256 digest, never the key) and the session's expiry; the
signature is HMAC-SHA256 under the console secret. Nothing is stored server-side, so
every replica given the same secret accepts the cookie, and a restart keeps people
signed in. The cookie alone admits nobody: each request looks the digest up in the
keys the service accepts right now, so a revoked key ends its sessions as soon as the
API refuses it (the key cache reloads within ``api_key_refresh_ms``).

CSRF: a signed-in form carries :meth:`SessionCodec.csrf_token`, an HMAC of the session
cookie, so a page of another origin (which cannot read the cookie) cannot make one.
The sign-in form, before any session, uses the double-submit form: a random nonce in
a cookie and its HMAC in the form (:meth:`login_token`).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import secrets
from dataclasses import dataclass

#: How long a sign-in lasts (a shift and then some); the key's own expiry cuts it short.
DEFAULT_TTL_MS = 12 * 3_600_000
#: The labels that keep one secret's signatures for one purpose each.
_SESSION = b"session\n"
_CSRF = b"csrf\n"
_LOGIN = b"login\n"


class BadSession(ValueError):
    """The cookie is malformed, forged or expired (the message says which)."""


@dataclass(frozen=True)
class Claims:
    """What a session cookie says: the key's name and digest, and the expiry."""

    key_name: str
    key_digest: str
    expires_at: int


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def derive_secret(master: bytes) -> bytes:
    """The console's secret from the notifier's signing key (the ack-link key), so
    there is no second key file to share between replicas; a console cookie never
    verifies as an ack link nor the other way round."""
    return hmac.new(master, b"slawatch console v1", hashlib.sha256).digest()


@dataclass(frozen=True)
class SessionCodec:
    """Makes and checks session cookies and CSRF tokens under ``secret``."""

    secret: bytes
    ttl_ms: int = DEFAULT_TTL_MS

    def _sign(self, purpose: bytes, material: str) -> str:
        return _b64(hmac.new(self.secret, purpose + material.encode(), hashlib.sha256).digest())

    def issue(self, key_name: str, key_digest: str, now_ms: int, key_expires_at: int | None) -> str:
        """A cookie value for the key, valid ``ttl_ms`` (or until the key expires)."""
        expires = now_ms + self.ttl_ms
        if key_expires_at is not None:
            expires = min(expires, key_expires_at)
        body = json.dumps(
            {"n": key_name, "d": key_digest, "e": expires, "r": secrets.token_urlsafe(9)},
            separators=(",", ":"),
        )
        claims = _b64(body.encode())
        return f"{claims}.{self._sign(_SESSION, claims)}"

    def read(self, cookie: str, now_ms: int) -> Claims:
        """The claims of a cookie :meth:`issue` made; :class:`BadSession` otherwise."""
        claims, dot, signature = cookie.partition(".")
        if not dot or not claims or not signature:
            raise BadSession("malformed session")
        if not hmac.compare_digest(signature, self._sign(_SESSION, claims)):
            raise BadSession("bad signature")
        try:
            body = json.loads(_unb64(claims))
            found = Claims(str(body["n"]), str(body["d"]), int(body["e"]))
        except (ValueError, KeyError, TypeError, binascii.Error):
            raise BadSession("malformed session") from None
        if now_ms >= found.expires_at:
            raise BadSession("session expired")
        return found

    def csrf_token(self, cookie: str) -> str:
        """The token every form of this session carries."""
        return self._sign(_CSRF, cookie)

    def csrf_ok(self, cookie: str, token: str | None) -> bool:
        return bool(token) and hmac.compare_digest(str(token), self.csrf_token(cookie))

    def login_token(self, nonce: str) -> str:
        """The sign-in form's token for the nonce in its cookie."""
        return self._sign(_LOGIN, nonce)

    def login_ok(self, nonce: str | None, token: str | None) -> bool:
        return (
            bool(nonce)
            and bool(token)
            and hmac.compare_digest(str(token), self.login_token(str(nonce)))
        )


def new_nonce() -> str:
    return secrets.token_urlsafe(18)
