"""Where the ack-link signing key lives: a 0600 file, never the database.

Anyone who can read the key can forge an acknowledgement link for any breach, and the
embedded PostgreSQL is reachable by every local login, so the key is kept in
``SLAWATCH_ACK_LINK_KEY_FILE`` (default ``<data_dir>/ack-link.key``), made on first
start. Replicas on several hosts must be given the same file (a mounted secret), or
a link made by one is refused by the others.

Migration: a key an earlier version left in ``notifier_secrets`` is written into the
file when there is none yet (so links already sent keep working) and deleted from
the database either way, inside one transaction holding the row's lock.

The file is created under a temporary name and hard-linked into place, which fails
when another process got there first; that one's key is then read, so replicas on one
host agree without locks.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import secrets
import stat
from pathlib import Path

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.notifier.exceptions import NotifierError
from shared.models import NotifierSecret

log = logging.getLogger(__name__)

LEGACY_ROW = "ack-link-key"
MIN_KEY_CHARS = 32


class KeyFileInvalid(NotifierError):
    """The key file exists but holds no usable key."""


def _read(path: Path) -> bytes:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Readable by others is the very leak this file prevents: tighten it.
            os.fchmod(f.fileno(), 0o600)
            log.warning("ack-link key file %s was readable by others; set to 0600", path)
        key = f.read(4096).strip()
    if len(key) < MIN_KEY_CHARS:
        raise KeyFileInvalid(f"{path} holds no ack-link key (at least {MIN_KEY_CHARS} chars)")
    return key


def read_or_create(path: Path, initial: str | None = None) -> bytes:
    """The key in ``path``; when absent, the file is created (0600) with ``initial``
    or a new random key."""
    try:
        return _read(path)
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    value = initial if initial and len(initial) >= MIN_KEY_CHARS else secrets.token_urlsafe(32)
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(value.encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        with contextlib.suppress(FileExistsError):  # another replica was first: use its key
            os.link(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
    return _read(path)


async def ack_link_key(sessions: async_sessionmaker[AsyncSession], path: Path) -> bytes:
    """The signing key from ``path``, moving a key stored by an earlier version out of
    the database (see the module docstring)."""
    async with sessions() as session, session.begin():
        row = await session.get(NotifierSecret, LEGACY_ROW, with_for_update=True)
        legacy = None if row is None else row.value
        key = await asyncio.to_thread(read_or_create, path, legacy)
        if row is not None:
            await session.delete(row)
            log.info("ack-link key moved from the database to %s", path)
    return key
