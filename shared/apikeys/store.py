"""The ``api_keys`` table: create, list, revoke, read the active keys, note use.

Every change notifies :data:`CHANGES_CHANNEL` in its transaction (delivered on
commit), so running services reload their key cache at once
(:mod:`shared.apikeys.cache`). A revoked key keeps its row (and its name) for the
audit trail: who created it, who revoked it, when.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, text, update
from sqlalchemy.ext.asyncio import AsyncSession

from shared.apikeys import tokens
from shared.apikeys.ratelimit import Rate
from shared.apikeys.scopes import Scope
from shared.errors import SlawatchError
from shared.models import ApiKeyRecord

CHANGES_CHANNEL = "slawatch_api_keys"
_KNOWN = frozenset(s.value for s in Scope)
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$")


class KeyExists(SlawatchError):
    """A key (active or revoked) already has this name."""


class NoSuchKey(SlawatchError):
    """No active key has this name."""


@dataclass(frozen=True)
class KeyEntry:
    """What a running service knows of an active key."""

    name: str
    digest: str
    scopes: frozenset[Scope]
    rate: Rate | None
    expires_at_ms: int | None


def check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(
            f"a key name is 1-64 letters, digits, '.', '_' or '-' (first a letter or digit),"
            f" not {name!r}"
        )
    return name


async def _notify(session: AsyncSession, name: str) -> None:
    await session.execute(
        text("SELECT pg_notify(:channel, :name)"),
        {
            "channel": CHANGES_CHANNEL,
            "name": name,
        },
    )


async def create_key(
    session: AsyncSession,
    *,
    name: str,
    scopes: Iterable[Scope],
    actor: str,
    now: datetime,
    expires_at: datetime | None = None,
    rate: Rate | None = None,
) -> str:
    """Store a new key and return it: the only time it exists outside its holder."""
    check_name(name)
    if await session.get(ApiKeyRecord, name) is not None:
        raise KeyExists(f"a key named {name!r} exists (revoked keys keep their name)")
    key = tokens.new_key()
    session.add(
        ApiKeyRecord(
            name=name,
            digest=tokens.digest(key),
            scopes=sorted(s.value for s in scopes),
            rate_per_s=rate.per_s if rate else None,
            burst=rate.burst if rate else None,
            created_at=now,
            created_by=actor[:256],
            expires_at=expires_at,
        )
    )
    await session.flush()
    await _notify(session, name)
    return key


async def list_keys(session: AsyncSession) -> list[ApiKeyRecord]:
    """Every key, revoked ones too, by name."""
    return list((await session.execute(select(ApiKeyRecord).order_by(ApiKeyRecord.name))).scalars())


async def revoke_key(session: AsyncSession, name: str, *, actor: str, now: datetime) -> None:
    """Revoke the active key ``name``; :class:`NoSuchKey` when there is none."""
    result = await session.execute(
        update(ApiKeyRecord)
        .where(ApiKeyRecord.name == name, ApiKeyRecord.revoked_at.is_(None))
        .values(revoked_at=now, revoked_by=actor[:256])
    )
    if getattr(result, "rowcount", 0) != 1:
        raise NoSuchKey(f"no active key named {name!r}")
    await _notify(session, name)


async def active_keys(session: AsyncSession) -> list[KeyEntry]:
    """Every key not revoked (expired ones too: the service answers "expired")."""
    rows = (
        await session.execute(select(ApiKeyRecord).where(ApiKeyRecord.revoked_at.is_(None)))
    ).scalars()
    return [
        KeyEntry(
            name=row.name,
            digest=row.digest,
            scopes=frozenset(Scope(s) for s in row.scopes if s in _KNOWN),
            rate=Rate(row.rate_per_s, row.burst)
            if row.rate_per_s is not None and row.burst is not None
            else None,
            expires_at_ms=None
            if row.expires_at is None
            else int(row.expires_at.timestamp() * 1000),
        )
        for row in rows
    ]


async def touch(session: AsyncSession, used: Mapping[str, datetime]) -> None:
    """Record when each key was last used (no notification: nothing a cache holds)."""
    for name, at in used.items():
        await session.execute(
            update(ApiKeyRecord)
            .where(
                ApiKeyRecord.name == name,
                (ApiKeyRecord.last_used_at.is_(None)) | (ApiKeyRecord.last_used_at < at),
            )
            .values(last_used_at=at)
        )
