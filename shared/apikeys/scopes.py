"""The scopes an API key can hold. ``admin`` implies every other one (and is the only
scope that manages keys); no other scope implies another."""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Scope(StrEnum):
    """What a key may do; the value is what ``--scope`` and the database hold."""

    EVENTS_WRITE = "events:write"
    CONFIG_READ = "config:read"
    CONFIG_WRITE = "config:write"
    BREACHES_READ = "breaches:read"
    BREACHES_ACK = "breaches:ack"
    REPORTS_READ = "reports:read"
    METRICS_READ = "metrics:read"
    ADMIN = "admin"


ALL_SCOPES: tuple[Scope, ...] = tuple(Scope)


def parse_scopes(values: Iterable[str]) -> frozenset[Scope]:
    """``["config:read", "admin"]`` → scopes; ValueError naming an unknown one."""
    scopes: set[Scope] = set()
    for value in values:
        try:
            scopes.add(Scope(value.strip()))
        except ValueError:
            known = ", ".join(s.value for s in Scope)
            raise ValueError(f"unknown scope {value!r}; known: {known}") from None
    return frozenset(scopes)


def grants(held: frozenset[Scope], needed: Scope) -> bool:
    """True when a key holding ``held`` may do what ``needed`` guards."""
    return Scope.ADMIN in held or needed in held
