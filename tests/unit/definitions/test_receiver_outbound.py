"""Receivers are refused at creation when they point at a denied destination or carry
a secret reference the rules refuse, with the field named."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from shared.definitions.kinds.receivers import RULES, ReceiverRules
from shared.definitions.load import DefinitionsInvalid, parse_document
from shared.outbound import LOOPBACK
from shared.secret_refs import SecretRules


@pytest.fixture
def strict() -> Iterator[None]:
    """The production defaults (the suite itself allows loopback)."""
    token = RULES.set(ReceiverRules(secrets=SecretRules(secrets_dir=Path("/var/lib/s/secrets"))))
    yield
    RULES.reset(token)


def receiver(spec: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Receiver",
        "metadata": {"name": "r"},
        "spec": spec,
    }


def problems(spec: dict[str, Any]) -> list[tuple[str, str]]:
    try:
        parse_document(receiver(spec))
    except DefinitionsInvalid as exc:
        return [(e.path, e.message) for e in exc.errors]
    return []


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize(
    "url",
    [
        "http://169.254.169.254/latest/meta-data",
        "http://10.0.0.1/",
        "http://2852039166/",
        "http://[::ffff:169.254.169.254]/",
        "http://[::]/",
        "http://[64:ff9b::a9fe:a9fe]/",
        "http://[2002:a9fe:a9fe::]/",
        "http://198.18.0.1/",
        "http://0251.0376.0251.0376/",
        "http://localhost:9000/",
        "http://127.0.0.1:9000/alerts",
        "http://user@169.254.169.254/",
        "http://metadata.google.internal/",
    ],
)
@pytest.mark.parametrize("kind", ["webhook", "alertmanager", "slack", "teams", "pagerduty"])
def test_denied_urls_refused_at_creation(kind: str, url: str) -> None:
    spec: dict[str, Any] = {"type": kind, "url": url}
    if kind == "pagerduty":
        spec["routingKey"] = "env:SLAWATCH_SECRET_PD"
    found = [(path, message) for path, message in problems(spec) if "destination" in message]
    assert [path for path, _ in found] == ["spec.url"]
    assert "SLAWATCH_OUTBOUND_ALLOW" in found[0][1]


@pytest.mark.usefixtures("strict")
@pytest.mark.parametrize("host", ["10.0.0.1", "localhost", "169.254.43518", "[fd00::1]"])
def test_denied_smtp_host_refused_at_creation(host: str) -> None:
    spec = {"type": "email", "host": host, "from": "a@example.com", "to": ["b@example.com"]}
    assert [path for path, _ in problems(spec)] == ["spec.host"]


@pytest.mark.usefixtures("strict")
def test_names_pass_creation_and_are_checked_at_delivery() -> None:
    assert problems({"type": "webhook", "url": "https://hooks.example.com/x"}) == []


@pytest.mark.usefixtures("strict")
def test_secret_references_refused_at_creation() -> None:
    spec = {
        "type": "webhook",
        "url": "https://hooks.example.com/x",
        "secretHeaders": {"X": "file:/any/path", "Y": "env:ANY_VAR", "Z": "env:SLAWATCH_SECRET_Z"},
        "secret": "file:../../etc/shadow",
    }
    assert sorted(path for path, _ in problems(spec)) == [
        "spec.secret",
        "spec.secretHeaders.X",
        "spec.secretHeaders.Y",
    ]
    pd = {"type": "pagerduty", "routingKey": "env:DATABASE_URL"}
    assert [path for path, _ in problems(pd)] == ["spec.routingKey"]
    slack = {"type": "slack", "url": "file:/etc/passwd"}
    assert [path for path, _ in problems(slack)] == ["spec.url"]


def test_allow_list_re_enables() -> None:
    token = RULES.set(ReceiverRules(allow=LOOPBACK))
    try:
        assert problems({"type": "webhook", "url": "http://127.0.0.1:9000/alerts"}) == []
        assert problems({"type": "webhook", "url": "http://10.0.0.1/"}) != []
    finally:
        RULES.reset(token)
