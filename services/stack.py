"""The whole stack on one machine: what ``slawatch up`` runs and the end-to-end tests use.

Start order: embedded broker and PostgreSQL (only those not configured), migrations,
topics, definitions, the local admin API key (created on the first start, kept in
``<data_dir>/admin.key`` with mode 0600, reused after), then ingest, evaluator and
notifier as separate processes, each waited for on ``/readyz``; last, the connection
facts in ``<data_dir>/stack.json`` (0600, :mod:`shared.stackfacts`), which the other
commands read, removed again when the stop begins.

While it runs, a :class:`StackSupervisor` restarts any child that exits — a service,
the embedded broker (it comes back empty and gets its topics again; consumers notice
the new log by its cluster id) or PostgreSQL (on its data directory) — with the
backoff of :mod:`services.supervision`. Only the caller stops the stack.

Stop order drains the pipeline front to back, each step after the previous one
exited, so every event ingest acknowledged is evaluated and every breach it caused is
in the notifier's outbox before the memory-only broker goes away:

1. ingest (answers 503 + ``Retry-After`` to new requests, finishes the ones in
   flight, flushes its producer);
2. the evaluator (reads the events topic to its end, publishes, checkpoints);
3. the notifier (reads the breaches topic to its end into the outbox, finishes
   in-flight deliveries);
4. PostgreSQL and the broker.

Every child dies with this process even when it is killed (see shared.embedded).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
from sqlalchemy.engine import make_url

from services.supervision import RestartPolicy, RestartTracker
from shared import db, stackfacts
from shared.apikeys import store as keys_store
from shared.apikeys import tokens
from shared.apikeys.scopes import Scope
from shared.definitions.load import load_paths
from shared.definitions.model import Document
from shared.definitions.store import Applied, apply
from shared.embedded import ChildProcess, EmbeddedInfra, embedded_infra, port_open, spawn
from shared.errors import InfrastructureError
from shared.settings import Settings
from shared.timeutil import Clock
from shared.topics import ensure_topics

log = logging.getLogger(__name__)

SERVICES = ("ingest", "evaluator", "notifier")
#: Front to back: each one drains what the previous one produced (module docstring).
STOP_ORDER = SERVICES
#: On top of ``shutdown_grace_s``: interpreter exit, closing clients, leaving the group.
STOP_MARGIN_S = 5.0
POLL_S = 0.1

Announce = Callable[[str], None]


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


def _log_only(message: str) -> None:
    log.info(message)


class StartSteps:
    """The lines a person sees while the stack starts: each step as it completes, with
    the seconds since the start (the first start initialises the database: a silent
    wait would look like a hang)."""

    def __init__(self, announce: Announce, clock: Callable[[], float] = time.monotonic) -> None:
        self._announce = announce
        self._clock = clock
        self._started = clock()

    def done(self, what: str) -> None:
        self._announce(f"slawatch: [{self._clock() - self._started:5.1f} s] {what}")


def infrastructure_line(settings: Settings, effective: Settings) -> str:
    """Which broker and database the stack uses, and which of them it started."""
    broker = "your broker" if settings.kafka_bootstrap else "embedded broker"
    database = "your PostgreSQL" if settings.database_url else "embedded PostgreSQL"
    where = make_url(effective.database_url or "")
    return (
        f"{broker} at {effective.kafka_bootstrap}, {database} at "
        f"{where.host}:{where.port or 5432} ready"
    )


@dataclass
class Stack:
    """A running stack: the effective settings, the service processes, their URLs."""

    settings: Settings
    infra: EmbeddedInfra
    services: dict[str, ChildProcess] = field(default_factory=dict)
    #: the definitions loaded on start, and what applying them changed
    documents: list[Document] = field(default_factory=list)
    applied: list[Applied] = field(default_factory=list)
    env: dict[str, str] = field(default_factory=dict)
    supervisor: StackSupervisor | None = None
    announce: Announce = _log_only
    #: the local admin API key (``<data_dir>/admin.key``, 0600) and whether this
    #: start created it
    admin_key: str = ""
    admin_key_created: bool = False

    @property
    def admin_key_file(self) -> Path:
        return admin_key_path(self.settings)

    @property
    def facts_file(self) -> Path:
        """The connection facts of this stack (:mod:`shared.stackfacts`)."""
        return stackfacts.facts_path(self.settings.data_dir)

    def url(self, service: str) -> str:
        port = getattr(self.settings, f"{service}_port")
        return f"http://{self.settings.host}:{port}"

    def dead(self) -> list[str]:
        return [name for name, child in self.services.items() if not child.running()]

    @property
    def restarts(self) -> dict[str, int]:
        """Restarts so far per child name (services, ``broker``, ``postgres``)."""
        return self.supervisor.counts() if self.supervisor else {}

    def spawn_service(self, name: str) -> ChildProcess:
        child = spawn(
            name,
            [sys.executable, "-m", "services.cli", name],
            log_file=self.settings.data_dir / "logs" / f"{name}.log",
            env=self.env,
        )
        self.services[name] = child
        return child

    def stop_services(self) -> dict[str, int]:
        """Stop restarting, then stop the services one after the other in
        :data:`STOP_ORDER`; their exit codes."""
        if self.supervisor is not None:
            self.supervisor.pause()
        grace_s = self.settings.shutdown_grace_s + STOP_MARGIN_S
        codes: dict[str, int] = {}
        for name in STOP_ORDER:
            child = self.services.get(name)
            if child is None:
                continue
            was_running = child.running()
            codes[name] = child.stop(grace_s=grace_s)
            if was_running:
                self.announce(f"slawatch: {name} stopped ({_exit_text(codes[name])})")
        return codes


class StackSupervisor:
    """Restarts every child of a :class:`Stack` that exits, from its own thread.

    The thread lives until :meth:`close`, after every child is stopped: a child gets
    SIGTERM when the thread that started it ends (``PR_SET_PDEATHSIG``), so a thread
    that ended earlier would stop the children it restarted out of order.
    """

    def __init__(
        self,
        stack: Stack,
        policy: RestartPolicy,
        clock: Clock = monotonic_ms,
        poll_s: float = POLL_S,
    ) -> None:
        self._stack = stack
        self._policy = policy
        self._clock = clock
        self._poll_s = poll_s
        self._trackers: dict[str, RestartTracker] = {}
        self._due: dict[str, int] = {}  # child name -> when to start it again
        self._lock = threading.Lock()  # one check at a time; pause() waits for it
        self._paused = False
        self._closed = threading.Event()
        self._thread = threading.Thread(target=self._run, name="slawatch-supervisor", daemon=True)

    def start(self) -> None:
        for name, _child in self._children():
            self._trackers[name] = RestartTracker(self._policy, self._clock)
        self._thread.start()

    def pause(self) -> None:
        """No restart from now on (a restart in progress finishes first)."""
        with self._lock:
            self._paused = True

    def close(self) -> None:
        self.pause()
        self._closed.set()
        if self._thread.is_alive():
            self._thread.join()

    def counts(self) -> dict[str, int]:
        return {name: tracker.count for name, tracker in self._trackers.items()}

    def _children(self) -> list[tuple[str, ChildProcess]]:
        stack = self._stack
        return [*stack.services.items(), *((c.name, c) for c in stack.infra.children or [])]

    def _run(self) -> None:
        while not self._closed.wait(self._poll_s):
            with self._lock:
                if self._paused:
                    continue
                try:
                    self.check()
                except Exception:  # keep supervising the other children
                    log.exception("supervision check failed")

    def check(self) -> None:
        """One pass: schedule a restart for each child that exited, run those due."""
        for name, child in self._children():
            due = self._due.get(name)
            if due is None:
                if not child.running():
                    self._schedule(name, f"exited with {_exit_text(child.process.returncode)}")
            elif self._clock() >= due:
                self._restart(name)

    def _schedule(self, name: str, what: str) -> None:
        tracker = self._trackers.setdefault(name, RestartTracker(self._policy, self._clock))
        decision = tracker.exited()
        self._due[name] = self._clock() + decision.delay_ms
        message = (
            f"slawatch: {name} {what}; restarting in {decision.delay_ms / 1000:.1f} s"
            f" (restart {decision.count})"
        )
        log.warning(
            message,
            extra={"child": name, "restarts": decision.count, "delay_ms": decision.delay_ms},
        )
        self._stack.announce(message)

    def _restart(self, name: str) -> None:
        stack = self._stack
        try:
            if name in SERVICES:
                child = stack.spawn_service(name)
            else:
                child = stack.infra.restart(name)
                if name == "broker":
                    _recreate_topics(stack.settings)
        except (InfrastructureError, OSError) as exc:
            self._schedule(name, f"did not start ({exc})")
            return
        del self._due[name]
        self._trackers[name].started()
        log.info("%s restarted", name, extra={"child": name, "pid": child.process.pid})


def _recreate_topics(settings: Settings) -> None:
    """A new embedded broker is empty: create the topics before a producer's first send
    creates them with the broker's default partition count."""
    try:
        asyncio.run(ensure_topics(settings))
    except Exception:  # the services' own topic guard retries
        log.exception("topics not created on the restarted broker")


def _exit_text(code: int | None) -> str:
    if code is None:
        return "no exit code"
    if code < 0:
        with contextlib.suppress(ValueError):
            return f"code {code} ({signal.Signals(-code).name})"
    return f"code {code}"


async def prepare(settings: Settings, documents: list[Document]) -> list[Applied]:
    """Schema, topics and definitions: idempotent, so every start runs it."""
    assert settings.database_url is not None
    await db.migrate(settings.database_url)
    await ensure_topics(settings)
    if not documents:
        return []
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session, session.begin():
            return await apply(session, documents)
    finally:
        await engine.dispose()


ADMIN_KEY_FILE = "admin.key"
ADMIN_KEY_NAME = "local-admin"


def admin_key_path(settings: Settings) -> Path:
    return settings.data_dir / ADMIN_KEY_FILE


async def ensure_admin_key(settings: Settings) -> tuple[str, bool]:
    """The local profile's admin key: the one in ``<data_dir>/admin.key`` while the
    database knows it (active), else a new one written there (0600). (key, created)."""
    path = admin_key_path(settings)
    stored = path.read_text().strip() if path.exists() else None
    engine = db.engine(settings, pool_size=1)
    try:
        async with db.sessions(engine)() as session, session.begin():
            if stored is not None:
                active = {e.digest for e in await keys_store.active_keys(session)}
                if tokens.well_formed(stored) and tokens.digest(stored) in active:
                    return stored, False
            taken = {row.name for row in await keys_store.list_keys(session)}
            name = next(
                n
                for n in (ADMIN_KEY_NAME, *(f"{ADMIN_KEY_NAME}-{i}" for i in range(2, 10_000)))
                if n not in taken
            )
            key = await keys_store.create_key(
                session,
                name=name,
                scopes=[Scope.ADMIN],
                actor="slawatch up",
                now=datetime.now(UTC),
            )
    finally:
        await engine.dispose()
    _write_private(path, key + "\n")
    return key, True


def _write_private(path: Path, text: str) -> None:
    """Write ``text`` readable by this user only (0600 from the start, no window)."""
    path.unlink(missing_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(text)


def service_env(settings: Settings) -> dict[str, str]:
    env = dict(os.environ)
    for name, value in settings.model_dump(exclude_none=True).items():
        env[f"SLAWATCH_{name.upper()}"] = str(value)
    return env


def wait_ready(stack: Stack, timeout_s: float = 60.0) -> None:
    deadline = time.monotonic() + timeout_s
    pending = list(stack.services)
    with httpx.Client(timeout=1.0) as client:
        while pending:
            if dead := stack.dead():
                raise InfrastructureError(
                    f"{', '.join(dead)} exited during start; see {stack.settings.data_dir / 'logs'}"
                )
            name = pending[0]
            with contextlib.suppress(httpx.HTTPError):
                if client.get(f"{stack.url(name)}/readyz").status_code == 200:
                    pending.pop(0)
                    continue
            if time.monotonic() > deadline:
                raise InfrastructureError(f"{name} not ready within {timeout_s:.0f} s")
            time.sleep(0.1)


def default_definitions(settings: Settings) -> list[Path]:
    if settings.definitions_path is not None:
        return [settings.definitions_path]
    examples = Path("examples")
    return [examples] if examples.is_dir() else []


@contextlib.contextmanager
def running_stack(
    settings: Settings,
    definitions: list[Path] | None = None,
    *,
    restart_policy: RestartPolicy | None = None,
    announce: Announce = _log_only,
) -> Iterator[Stack]:
    """Start everything, supervised (``restart_policy``, default :class:`RestartPolicy`);
    stop everything in the drain order on exit, even after a failed start.
    ``announce`` receives the lines meant for a person (start steps, restarts, stops)."""
    steps = StartSteps(announce)
    settings.data_dir.mkdir(parents=True, exist_ok=True)
    for service in SERVICES:
        port = getattr(settings, f"{service}_port")
        if port_open(settings.host, port):
            raise InfrastructureError(
                f"port {port} for {service} is in use; set SLAWATCH_{service.upper()}_PORT"
            )
    with contextlib.ExitStack() as exits:
        # Registered first, so it runs last: after the infrastructure stopped.
        supervisors: list[StackSupervisor] = []

        @exits.callback
        def close_supervision() -> None:
            for supervisor in supervisors:
                supervisor.close()

        infra = exits.enter_context(
            embedded_infra(
                need_kafka=not settings.kafka_bootstrap,
                need_postgres=not settings.database_url,
                data_dir=settings.data_dir,
                kafka_port=settings.embedded_kafka_port,
                postgres_port=settings.embedded_postgres_port,
            )
        )
        effective = settings.model_copy(
            update={
                "kafka_bootstrap": settings.kafka_bootstrap or infra.kafka_bootstrap,
                "database_url": settings.database_url or infra.database_url,
            }
        )
        steps.done(infrastructure_line(settings, effective))
        stack = Stack(effective, infra, env=service_env(effective), announce=announce)
        paths = default_definitions(settings) if definitions is None else definitions
        stack.documents = load_paths(paths) if paths else []
        stack.applied = asyncio.run(prepare(effective, stack.documents))
        stack.admin_key, stack.admin_key_created = asyncio.run(ensure_admin_key(effective))
        steps.done(
            f"database schema up to date, {len(stack.documents)} definition(s) from "
            f"{', '.join(str(p) for p in paths) or 'nowhere'} applied"
        )
        try:
            for service in SERVICES:
                stack.spawn_service(service)
            wait_ready(stack)
            steps.done(f"{', '.join(SERVICES)} ready")
            stack.supervisor = StackSupervisor(stack, restart_policy or RestartPolicy())
            supervisors.append(stack.supervisor)
            stack.supervisor.start()
            write_facts(stack)
            yield stack
        finally:
            # Gone before the drain: a command started now finds no stack rather
            # than one that is going away.
            stackfacts.remove(stack.facts_file)
            stack.stop_services()


def write_facts(stack: Stack) -> None:
    """``<data_dir>/stack.json`` (0600): how the other commands find this stack."""
    s = stack.settings
    stackfacts.write(
        stack.facts_file,
        stackfacts.current_process_facts(
            database_url=s.database_url or "",
            kafka_bootstrap=s.kafka_bootstrap or "",
            services={name: _client_url(stack, name) for name in SERVICES},
            admin_key_file=stack.admin_key_file,
            data_dir=s.data_dir,
            outbound_allow=s.outbound_allow,
        ),
    )


#: Bind-everything addresses: a client on this machine connects to loopback instead.
_ANY_ADDRESS = {"0.0.0.0", "::", ""}  # noqa: S104 (compared with, not bound)


def _client_url(stack: Stack, service: str) -> str:
    host = stack.settings.host
    port = getattr(stack.settings, f"{service}_port")
    if host in _ANY_ADDRESS:
        return f"http://127.0.0.1:{port}"
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"
