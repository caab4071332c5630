"""Console session cookies and CSRF tokens (pure)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.notifier.console.session import (
    BadSession,
    SessionCodec,
    derive_secret,
    new_nonce,
)

NOW = 1_800_000_000_000
CODEC = SessionCodec(derive_secret(b"k" * 32), ttl_ms=3_600_000)
DIGEST = "ab" * 32


def test_a_cookie_reads_back_until_it_expires() -> None:
    cookie = CODEC.issue("oncall", DIGEST, NOW, None)
    claims = CODEC.read(cookie, NOW + 3_599_999)
    assert (claims.key_name, claims.key_digest, claims.expires_at) == (
        "oncall",
        DIGEST,
        NOW + 3_600_000,
    )
    with pytest.raises(BadSession, match="expired"):
        CODEC.read(cookie, NOW + 3_600_000)


def test_the_key_expiry_cuts_the_session_short() -> None:
    cookie = CODEC.issue("oncall", DIGEST, NOW, NOW + 60_000)
    assert CODEC.read(cookie, NOW).expires_at == NOW + 60_000
    with pytest.raises(BadSession):
        CODEC.read(cookie, NOW + 60_000)


def test_each_sign_in_makes_a_different_cookie() -> None:
    assert CODEC.issue("oncall", DIGEST, NOW, None) != CODEC.issue("oncall", DIGEST, NOW, None)


@pytest.mark.parametrize(
    ("cookie", "reason"),
    [
        ("", "malformed"),
        ("nodot", "malformed"),
        (".sig", "malformed"),
        ("claims.", "malformed"),
        ("e30.AAAA", "bad signature"),
    ],
)
def test_malformed_cookies_are_refused(cookie: str, reason: str) -> None:
    with pytest.raises(BadSession, match=reason):
        CODEC.read(cookie, NOW)


def test_another_secret_does_not_verify() -> None:
    other = SessionCodec(derive_secret(b"o" * 32))
    with pytest.raises(BadSession, match="bad signature"):
        other.read(CODEC.issue("oncall", DIGEST, NOW, None), NOW)


def test_the_console_secret_is_not_the_signing_key() -> None:
    assert derive_secret(b"k" * 32) != b"k" * 32
    assert derive_secret(b"k" * 32) == derive_secret(b"k" * 32)


@given(st.data())
def test_any_change_to_a_cookie_is_refused(data: st.DataObject) -> None:
    cookie = CODEC.issue("oncall", DIGEST, NOW, None)
    index = data.draw(st.integers(0, len(cookie) - 1))
    replacement = data.draw(
        st.sampled_from("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.")
    )
    changed = cookie[:index] + replacement + cookie[index + 1 :]
    if changed == cookie:
        return
    with pytest.raises(BadSession):
        CODEC.read(changed, NOW)


def test_csrf_token_belongs_to_one_session() -> None:
    one = CODEC.issue("oncall", DIGEST, NOW, None)
    two = CODEC.issue("oncall", DIGEST, NOW, None)
    token = CODEC.csrf_token(one)
    assert CODEC.csrf_ok(one, token)
    assert not CODEC.csrf_ok(two, token)
    assert not CODEC.csrf_ok(one, None)
    assert not CODEC.csrf_ok(one, "")
    assert not CODEC.csrf_ok(one, token[:-1])


def test_login_token_matches_its_nonce_only() -> None:
    nonce, other = new_nonce(), new_nonce()
    token = CODEC.login_token(nonce)
    assert CODEC.login_ok(nonce, token)
    assert not CODEC.login_ok(other, token)
    assert not CODEC.login_ok(None, token)
    assert not CODEC.login_ok(nonce, None)
    # a session's CSRF token is not a sign-in token for the same string
    assert not CODEC.login_ok(nonce, CODEC.csrf_token(nonce))
