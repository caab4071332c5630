"""API keys without a database: key shape, token bucket (table), rate limit answers."""

from __future__ import annotations

import pytest

from shared.apikeys import tokens
from shared.apikeys.cache import StaticKeys
from shared.apikeys.ratelimit import Buckets, Rate, TokenBucket, parse_rate
from shared.apikeys.scopes import Scope, grants, parse_scopes
from shared.http.auth import Authenticator
from shared.http.problems import HttpProblem
from tests.keys import entry


def test_keys_are_random_256_bit_and_only_their_digest_is_kept() -> None:
    made = {tokens.new_key() for _ in range(200)}
    assert len(made) == 200
    for key in made:
        assert tokens.well_formed(key) and len(key) == 46
        digest = tokens.digest(key)
        assert len(digest) == 64 and key not in digest
        assert tokens.same_digest(digest, tokens.digest(key))
    assert not tokens.well_formed("sw_short")


@pytest.mark.parametrize(
    ("text", "per_s"), [("50/s", 50.0), ("600/m", 10.0), ("3600/h", 1.0), (" 2.5 / s ", 2.5)]
)
def test_parse_rate(text: str, per_s: float) -> None:
    assert parse_rate(text) == per_s


@pytest.mark.parametrize("text", ["50", "0/s", "-1/s", "5/d", "fast"])
def test_parse_rate_refuses(text: str) -> None:
    with pytest.raises(ValueError):
        parse_rate(text)


# (rate per s, burst, [(time ms, expected wait ms)...])
BUCKET_TABLE = [
    (1.0, 2, [(0, 0), (0, 0), (0, 1000), (500, 500), (1000, 0), (1000, 1000)]),
    (10.0, 1, [(0, 0), (50, 50), (100, 0), (100, 100)]),
    (1.0, 3, [(0, 0), (0, 0), (0, 0), (0, 1000), (60_000, 0), (60_000, 0), (60_000, 0)]),
    # refused requests take nothing; a clock going back adds nothing
    (2.0, 1, [(1000, 0), (900, 500), (1250, 250), (1500, 0)]),
]


@pytest.mark.parametrize(("per_s", "burst", "steps"), BUCKET_TABLE)
def test_token_bucket(per_s: float, burst: int, steps: list[tuple[int, int]]) -> None:
    bucket = TokenBucket(Rate(per_s, burst), steps[0][0])
    assert [bucket.take(at) for at, _ in steps] == [wait for _, wait in steps]


def test_buckets_per_key_and_a_new_rate_starts_afresh() -> None:
    buckets = Buckets()
    one = Rate(1.0, 1)
    assert buckets.take("a", one, 0) == 0
    assert buckets.take("a", one, 0) == 1000
    assert buckets.take("b", one, 0) == 0  # its own bucket
    assert buckets.take("a", Rate(1.0, 5), 0) == 0  # rate changed: a new, full bucket


def test_scopes() -> None:
    assert parse_scopes(["events:write", "admin"]) == {Scope.EVENTS_WRITE, Scope.ADMIN}
    with pytest.raises(ValueError, match="unknown scope"):
        parse_scopes(["events:read"])
    assert grants(frozenset({Scope.ADMIN}), Scope.BREACHES_ACK)
    assert not grants(frozenset({Scope.CONFIG_WRITE}), Scope.CONFIG_READ)


def test_over_the_rate_is_429_with_retry_after_and_use_is_noted() -> None:
    key = "sw_" + "r" * 43
    keys = StaticKeys([entry(key, "slow", [Scope.EVENTS_WRITE], rate=Rate(0.5, 2))])
    now = [0]
    auth = Authenticator(
        keys, default_rate=Rate(100, 100), clock=lambda: 7, monotonic=lambda: now[0]
    )
    header = f"Bearer {key}"
    assert auth.check(header, Scope.EVENTS_WRITE).name == "slow"
    assert auth.check(header, Scope.EVENTS_WRITE).name == "slow"
    with pytest.raises(HttpProblem) as refused:
        auth.check(header, Scope.EVENTS_WRITE)
    assert refused.value.problem.status == 429
    assert refused.value.problem.slug == "rate-limited"
    assert refused.value.headers == {"Retry-After": "2"}
    now[0] = 2_000
    assert auth.check(header, Scope.EVENTS_WRITE).name == "slow"
    assert keys.last_used == {"slow": 7}


def test_key_operations_from_the_cli_record_cli_and_the_user(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the actor stored as created_by / revoked_by by `slawatch keys create|revoke`
    from shared.apikeys import cli

    monkeypatch.setenv("USER", "ana")
    assert cli.actor() == "cli:ana"
