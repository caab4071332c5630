"""The embedded PostgreSQL asks for a password: made on the first start, kept beside the
data directory for this user only, and set once on a data directory from before, when
the server trusted every local connection. Real servers, started from their wheel."""

from __future__ import annotations

import os
import stat
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest

from shared.db import redacted_url
from shared.embedded import (
    PG_SUPERUSER,
    _allow_traverse,
    _chown_tree,
    _system_user,
    free_port,
    password_file,
    postgres_bin,
    postgres_password,
    postgres_url,
    start_postgres,
    trusts,
)
from shared.errors import InfrastructureError

pytestmark = pytest.mark.integration


@dataclass
class Server:
    """A running embedded server and where its files are."""

    data_dir: Path
    port: int
    log_file: Path


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    root = tmp_path_factory.mktemp("pgauth")
    started = Server(root / "pgdata", free_port(), root / "postgres.log")
    child = start_postgres(started.data_dir, started.port, started.log_file)
    try:
        yield started
    finally:
        child.stop()


@pytest.fixture(autouse=True)
def no_ambient_password(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    # libpq and asyncpg fall back on these: a refusal must not depend on the caller's.
    monkeypatch.delenv("PGPASSWORD", raising=False)
    monkeypatch.setenv("PGPASSFILE", str(tmp_path / "no-pgpass"))


async def _current_user(port: int, password: str | None, database: str = "slawatch") -> str:
    conn = await asyncpg.connect(
        host="127.0.0.1", port=port, user=PG_SUPERUSER, password=password, database=database
    )
    try:
        return str(await conn.fetchval("SELECT current_user"))
    finally:
        await conn.close()


async def _assert_password_required(port: int, password: str) -> None:
    assert await _current_user(port, password) == PG_SUPERUSER
    for wrong in (None, "", "not-" + password, password.upper()):
        with pytest.raises(asyncpg.InvalidPasswordError):
            await _current_user(port, wrong)


async def test_a_login_needs_the_password(server: Server) -> None:
    password = postgres_password(server.data_dir)
    await _assert_password_required(server.port, password)
    conn = await asyncpg.connect(postgres_url(server.port, password))
    await conn.close()
    # The command-line clients too (what start_postgres itself runs): without the
    # password, psql is refused rather than let in.
    psql = subprocess.run(
        [
            *(str(postgres_bin() / "psql"), "-X", "-w", "-h", "127.0.0.1", "-p", str(server.port)),
            *("-U", PG_SUPERUSER, "-d", "slawatch", "-tAc", "SELECT 1"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert psql.returncode != 0
    assert "password" in psql.stderr


def test_the_password_is_kept_beside_the_data_directory_for_this_user_only(
    server: Server,
) -> None:
    path = password_file(server.data_dir)
    assert path == server.data_dir.parent / "pgdata.password"
    info = path.stat()
    assert stat.S_IMODE(info.st_mode) == 0o600
    assert info.st_uid == os.geteuid()
    password = postgres_password(server.data_dir)
    assert len(password) >= 43  # secrets.token_urlsafe(32): 256 bits
    # initdb's temporary password file is gone; nothing else was left beside.
    assert sorted(p.name for p in server.data_dir.parent.iterdir()) == [
        "pgdata",
        "pgdata.password",
        "postgres.log",
    ]
    assert not trusts(server.data_dir)
    assert password not in server.log_file.read_text()
    if os.geteuid() == 0:
        # The server runs as its own system user, which cannot read the file.
        ids = _system_user()
        assert ids is not None
        read = subprocess.run(
            ["cat", str(path)], user=ids[0], group=ids[1], capture_output=True, check=False
        )
        assert read.returncode != 0
        assert password.encode() not in read.stdout


def test_the_url_shown_hides_the_password(server: Server) -> None:
    password = postgres_password(server.data_dir)
    url = postgres_url(server.port, password)
    assert password in url
    shown = redacted_url(url)
    assert password not in shown
    assert shown == f"postgresql://postgres:***@127.0.0.1:{server.port}/slawatch"


def test_a_server_whose_password_file_is_gone_is_refused_clearly(server: Server) -> None:
    path = password_file(server.data_dir)
    aside = path.with_name("aside")
    path.rename(aside)
    try:
        with pytest.raises(InfrastructureError, match=r"pgdata\.password is missing") as refused:
            start_postgres(server.data_dir, free_port())
        assert "Restore the file" in str(refused.value)
    finally:
        aside.rename(path)


def _old_data_directory(data_dir: Path) -> None:
    """A data directory as ``start_postgres`` made it before passwords (``--auth=trust``),
    holding a row written before the move."""
    data_dir.mkdir(parents=True)
    ids = _system_user()
    if ids:
        _allow_traverse(data_dir)
        _chown_tree(data_dir, *ids)
    uid, gid = ids if ids else (None, None)
    bin_dir = postgres_bin()
    subprocess.run(
        [
            *(str(bin_dir / "initdb"), "-D", str(data_dir), "-U", PG_SUPERUSER),
            *("--auth=trust", "--encoding=UTF8", "--no-instructions"),
        ],
        check=True,
        capture_output=True,
        user=uid,
        group=gid,
    )
    # Single-user mode: the row is written without a server or a connection.
    subprocess.run(
        [str(bin_dir / "postgres"), "--single", "-D", str(data_dir), "postgres"],
        input=b"CREATE TABLE kept (x int);\nINSERT INTO kept VALUES (42);\n",
        check=True,
        capture_output=True,
        user=uid,
        group=gid,
    )


async def test_a_data_directory_from_before_gets_a_password(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    root = tmp_path_factory.mktemp("pgtrust")
    data_dir = root / "pgdata"
    log_file = root / "postgres.log"
    _old_data_directory(data_dir)
    assert trusts(data_dir)
    assert not password_file(data_dir).exists()

    port = free_port()
    child = start_postgres(data_dir, port, log_file)
    try:
        password = postgres_password(data_dir)
        assert stat.S_IMODE(password_file(data_dir).stat().st_mode) == 0o600
        assert not trusts(data_dir)
        await _assert_password_required(port, password)
        conn = await asyncpg.connect(postgres_url(port, password, "postgres"))
        try:
            assert await conn.fetchval("SELECT x FROM kept") == 42
        finally:
            await conn.close()
    finally:
        child.stop()

    # The next start finds nothing to move and keeps the same password.
    port = free_port()
    child = start_postgres(data_dir, port, log_file)
    try:
        assert postgres_password(data_dir) == password
        await _assert_password_required(port, password)
    finally:
        child.stop()
    assert password not in log_file.read_text()
