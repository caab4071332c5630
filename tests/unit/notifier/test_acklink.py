"""Ack link tokens: signed, bound to one breach, expiring (table)."""

from __future__ import annotations

import pytest

from services.notifier.acklink import AckLinks, BadToken

LINKS = AckLinks(b"key", "http://n/", ttl_ms=1_000)
TOKEN = LINKS.token("abc", now_ms=0)
ERRORS = {"link expired", "bad signature", "malformed"}


@pytest.mark.parametrize(
    ("token", "now", "result"),
    [
        (TOKEN, 0, "abc"),
        (TOKEN, 999, "abc"),
        (TOKEN, 1_000, "link expired"),
        (TOKEN.replace("abc", "abd", 1), 0, "bad signature"),  # another breach
        (TOKEN.replace(".1000.", ".9999.", 1), 0, "bad signature"),  # longer life
        (AckLinks(b"other", "http://n").token("abc", 0), 0, "bad signature"),
        (LINKS.token("v1.with.dots", 0), 0, "v1.with.dots"),
        ("abc.1000", 0, "malformed"),
        ("abc.x.sig", 0, "malformed"),
        (".1000.sig", 0, "malformed"),
    ],
)
def test_verify(token: str, now: int, result: str) -> None:
    if (result.islower() and " " in result) or result == "malformed":
        with pytest.raises(BadToken, match=result):
            LINKS.verify(token, now)
    else:
        assert LINKS.verify(token, now) == result


def test_urls() -> None:
    assert LINKS.url("abc", 0) == f"http://n/v1/ack/{TOKEN}"
    assert LINKS.status_url("abc") == "http://n/v1/breaches/abc"
