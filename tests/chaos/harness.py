"""One chaos run: a fresh stack, the scripted stream fed over HTTP, faults, results.

The stack is the project's own (:func:`services.stack.running_stack`: processes,
supervised, with a fresh data directory and free ports); on the embedded broker it
starts its own broker and PostgreSQL, on Apache Kafka (``SLAWATCH_TEST_BROKER=kafka``)
it uses the session's cluster under a topic prefix of its own and still starts its
own PostgreSQL. The test process plays three parts:

* the **producer** (:meth:`ChaosRun.feed`): batches in order; an item the response
  marks ``failed``, or a whole batch that got no 202 (ingest killed, 503), is sent
  again with the same ids, as a real producer does;
* the **fault injector**: kills and stops children by signal and records each fault's
  window (from the signal until the child is back and ready), which is what allows a
  duplicate delivery (tests.chaos.compare);
* the **receivers** (tests.chaos.inbox).

:meth:`ChaosRun.settle` waits, by conditions with a deadline, until the pipeline is
quiet, and collects the :class:`~tests.chaos.compare.Outcome`.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import signal
import sys
import tempfile
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import orjson

from services.stack import Stack, running_stack
from shared import db
from shared.embedded import (
    ChildProcess,
    free_port,
    password_file,
    postgres_password,
    postgres_url,
    spawn,
    start_postgres,
)
from shared.settings import Settings
from tests.chaos import observe
from tests.chaos.compare import Fault, Outcome
from tests.chaos.inbox import SECRET, Inbox, serving_inbox
from tests.chaos.script import Script, definitions

#: A request that got no answer is sent again after this pause: a producer's retry
#: pacing, not a wait for a condition (it has nothing to wait on but the next try).
RETRY_PAUSE_S = 0.2
REQUEST_TIMEOUT_S = 15.0
FEED_DEADLINE_S = 180.0
SETTLE_DEADLINE_S = 90.0
READY_DEADLINE_S = 90.0
SECRET_ENV = "SLAWATCH_SECRET_CHAOS_OPS_HOOK"


@dataclass
class ChaosBroker:
    """Where a run's stack gets its Kafka from: ``None`` bootstrap = its own embedded one."""

    kind: str = "embedded"
    bootstrap: str | None = None
    cluster: Any = None
    replication_factor: int = 1


@dataclass
class ChaosRun:
    """A running stack under test, and what happened to it."""

    name: str
    script: Script
    stack: Stack
    inbox: Inbox
    client: httpx.AsyncClient
    started: float = field(default_factory=time.monotonic)
    faults: list[Fault] = field(default_factory=list)
    retries: int = 0
    batches_sent: int = 0
    progress: asyncio.Condition = field(default_factory=asyncio.Condition)
    extra_evaluators: list[tuple[ChildProcess, int]] = field(default_factory=list)
    retired_evaluators: set[str] = field(default_factory=set)
    breaches_seen: list[tuple[str, str, int]] = field(default_factory=list)
    #: Seconds since the run started at which each phase ended (for the time budget).
    phases: dict[str, float] = field(default_factory=dict)

    def mark(self, phase: str) -> None:
        self.phases[phase] = round(self.since_start(), 1)

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    def since_start(self) -> float:
        return time.monotonic() - self.started

    def evaluator_urls(self) -> list[str]:
        """Every evaluator instance still meant to run (not one killed for good)."""
        host = self.settings.host
        urls = [self.stack.url("evaluator")] + [
            f"http://{host}:{port}" for _, port in self.extra_evaluators
        ]
        return [url for url in urls if url not in self.retired_evaluators]

    # -- the producer -------------------------------------------------------------------

    async def feed(
        self, batches: list[list[dict[str, Any]]] | None = None, pace_s: float = 0.0
    ) -> None:
        """Send ``batches`` (default: the whole script) in order, each until accepted;
        ``pace_s`` between batches spreads the stream over time, so that it is still
        flowing when a later fault strikes."""
        url = f"{self.stack.url('ingest')}/v1/events"
        async with asyncio.timeout(FEED_DEADLINE_S):
            for batch in self.script.batches if batches is None else batches:
                await self._send(url, batch)
                async with self.progress:
                    self.batches_sent += 1
                    self.progress.notify_all()
                if pace_s:
                    await asyncio.sleep(pace_s)  # the producer's rate, not a wait

    async def _send(self, url: str, batch: list[dict[str, Any]]) -> None:
        pending = batch
        while pending:
            body = b"\n".join(orjson.dumps(event) for event in pending)
            try:
                response = await self.client.post(
                    url, content=body, headers={"content-type": "application/x-ndjson"}
                )
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 202:
                results = response.json()["results"]
                pending = [pending[r["index"]] for r in results if r["status"] == "failed"]
                assert all(r["status"] != "rejected" for r in results), results
                if not pending:
                    return
            elif response is not None and response.status_code not in (429, 503):
                raise AssertionError(f"ingest answered {response.status_code}: {response.text}")
            self.retries += 1
            await asyncio.sleep(RETRY_PAUSE_S)

    async def wait_batches(self, count: int) -> None:
        async with asyncio.timeout(FEED_DEADLINE_S), self.progress:
            await self.progress.wait_for(lambda: self.batches_sent >= count)

    # -- the fault injector -------------------------------------------------------------

    def child(self, name: str) -> ChildProcess:
        if name in self.stack.services:
            return self.stack.services[name]
        for child in self.stack.infra.children or []:
            if child.name == name:
                return child
        raise KeyError(name)

    async def kill(self, name: str, sig: signal.Signals = signal.SIGKILL) -> Fault:
        """Signal a child (a service, ``broker`` or ``postgres``) and wait until the
        supervisor has it back and ready; the fault's window covers both."""
        old = self.child(name)
        start = time.monotonic()
        old.process.send_signal(sig)
        await asyncio.to_thread(old.process.wait)
        await self.wait_restarted(name, old)
        fault = Fault(
            f"{sig.name} {name} at +{start - self.started:.1f} s, back after "
            f"{time.monotonic() - start:.1f} s",
            start,
            time.monotonic(),
        )
        self.faults.append(fault)
        return fault

    async def wait_restarted(self, name: str, old: ChildProcess) -> None:
        async with asyncio.timeout(READY_DEADLINE_S):
            while True:
                current = self.child(name)
                if current is not old and current.running() and await self._ready(name):
                    return
                await asyncio.sleep(0.1)

    async def _ready(self, name: str) -> bool:
        if name not in self.stack.services:
            return True  # infrastructure: the supervisor returns once it accepts connections
        with contextlib.suppress(httpx.HTTPError):
            response = await self.client.get(f"{self.stack.url(name)}/readyz", timeout=2)
            return response.status_code == 200
        return False

    async def freeze(self, name: str, seconds: float) -> Fault:
        """SIGSTOP a child's whole process group (PostgreSQL: postmaster and backends)
        for ``seconds``, then SIGCONT."""
        pgid = os.getpgid(self.child(name).process.pid)
        start = time.monotonic()
        os.killpg(pgid, signal.SIGSTOP)
        try:
            await asyncio.sleep(seconds)  # the fault's length, not a wait for a condition
        finally:
            os.killpg(pgid, signal.SIGCONT)
        fault = Fault(
            f"SIGSTOP {name} {seconds:.0f} s at +{start - self.started:.1f} s",
            start,
            time.monotonic(),
        )
        self.faults.append(fault)
        return fault

    def start_evaluator_replica(self) -> int:
        """Another evaluator process in the same consumer group, on its own port."""
        port = free_port()
        env = dict(self.stack.env) | {"SLAWATCH_EVALUATOR_PORT": str(port)}
        index = len(self.extra_evaluators) + 2
        child = spawn(
            f"evaluator-{index}",
            [sys.executable, "-m", "services.cli", "evaluator"],
            log_file=self.settings.data_dir / "logs" / f"evaluator-{index}.log",
            env=env,
        )
        self.extra_evaluators.append((child, port))
        return port

    # -- results ------------------------------------------------------------------------

    async def drained(
        self, expected: dict[str, tuple[int, int]] | None = None
    ) -> set[tuple[str, str, int]]:
        """Wait until the evaluator checkpointed past every record of the events topic
        (and, given ``expected``, its ``-total`` counts equal it), then until the
        notifier recorded every breach event on the topic and no delivery is open.
        Returns the breach events on the topic. Gives up at the deadline, leaving the
        judgement to the comparison."""
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_DEADLINE_S):
                ends = await observe.topic_ends(
                    self.settings, f"{self.settings.topic_prefix}.events"
                )
                while True:
                    stored = await observe.checkpoint_offsets(self.settings)
                    done = all(stored.get(p, 0) >= end for p, end in ends.items() if end)
                    if done and expected is not None:
                        counts = await self._counts()
                        done = all(counts.get(k) == v for k, v in expected.items())
                    if done:
                        break
                    await asyncio.sleep(0.25)
        self.mark("checkpointed")
        records = await observe.read_topic(self.settings, f"{self.settings.topic_prefix}.breaches")
        triples = observe.breach_triples(records)
        self.breaches_seen.extend(triples)
        seen = set(self.breaches_seen)
        with contextlib.suppress(TimeoutError):
            async with asyncio.timeout(SETTLE_DEADLINE_S):
                while not await observe.notifier_settled(self.settings, seen):
                    await asyncio.sleep(0.25)
                self.mark("notified")
                await self.inbox.wait_for(lambda: not self.inbox.in_flight(), 10)
        return seen

    async def _counts(self) -> dict[str, tuple[int, int]]:
        with contextlib.suppress(httpx.HTTPError):
            return await observe.evaluator_counts(self.client, self.evaluator_urls())
        return {}

    async def outcome(self) -> Outcome:
        expected = expected_total_counts(self.script)
        seen = await self.drained(expected)
        self.mark("drained")
        return Outcome(
            counts=await observe.evaluator_counts(self.client, self.evaluator_urls()),
            breaches=seen,
            breach_records=len(self.breaches_seen),
            requests=list(self.inbox.requests),
            faults=list(self.faults),
            created=await observe.delivery_created(self.settings),
        )


def postgres_template(directory: Path) -> Path:
    """initdb, the slawatch database and every migration, once; returns the stopped
    server's data directory."""
    pgdata = directory / "pgdata"
    port = free_port()
    child = start_postgres(pgdata, port, directory / "postgres.log")
    try:
        db.migrate_sync(postgres_url(port, postgres_password(pgdata)))
    finally:
        child.stop()
    return pgdata


def expected_total_counts(script: Script) -> dict[str, tuple[int, int]]:
    return {
        f"{service}-total|{customer}": counts
        for (service, customer), counts in script.counts().items()
    }


def chaos_settings(data_dir: Path, broker: ChaosBroker, **overrides: Any) -> Settings:
    """Fresh ports and directory; short timings so faults heal within seconds."""
    values: dict[str, Any] = {
        "kafka_bootstrap": broker.bootstrap,
        "database_url": None,
        "data_dir": data_dir,
        "embedded_kafka_port": free_port(),
        "embedded_postgres_port": free_port(),
        "ingest_port": free_port(),
        "evaluator_port": free_port(),
        "notifier_port": free_port(),
        "topic_prefix": f"chaos{os.urandom(3).hex()}",
        "topic_replication_factor": broker.replication_factor,
        "events_partitions": 4,
        "kafka_session_timeout_ms": 3_000,
        "kafka_heartbeat_interval_ms": 300,
        "checkpoint_interval_ms": 500,
        "delivery_poll_interval_ms": 100,
        "delivery_timeout_ms": 2_000,
        "delivery_backoff_base_ms": 200,
        "delivery_backoff_max_ms": 2_000,
        "shutdown_grace_s": 4.0,
    }
    values.update(overrides)
    return Settings(**values)


@contextlib.asynccontextmanager
async def chaos_run(
    name: str,
    script: Script,
    directory: Path,
    broker: ChaosBroker,
    pg_template: Path | None = None,
    **overrides: Any,
) -> AsyncIterator[ChaosRun]:
    """A started stack with the scripted definitions and receivers; stopped on exit.

    ``pg_template``: a stopped, migrated PostgreSQL data directory (see
    :func:`postgres_template`) copied as the run's own, so the stack starts on it as
    on a second ``slawatch up`` instead of running ``initdb`` and every migration.

    The stack's data directory is made under the system's temporary directory, not
    pytest's: pytest makes its per-user root private at every session start (other
    sessions run beside this one), and the embedded PostgreSQL runs as its own user,
    which must reach the directory. ``directory`` gets the run's logs at the end.
    """
    work = Path(tempfile.mkdtemp(prefix=f"slawatch-chaos-{name}-"))
    try:
        if pg_template is not None:
            await asyncio.to_thread(
                shutil.copytree, pg_template, work / "data" / "pgdata", symlinks=True
            )
            # The password that the template's server asks for is kept beside it.
            shutil.copy2(password_file(pg_template), password_file(work / "data" / "pgdata"))
        async with _started(name, script, work, broker, **overrides) as run:
            yield run
    finally:
        # The logs go where pytest keeps a test's files; the rest (PostgreSQL data) goes.
        logs = work / "data" / "logs"
        if logs.is_dir():
            shutil.copytree(logs, directory / "logs", dirs_exist_ok=True)
        shutil.rmtree(work, ignore_errors=True)


@contextlib.asynccontextmanager
async def _started(
    name: str, script: Script, directory: Path, broker: ChaosBroker, **overrides: Any
) -> AsyncIterator[ChaosRun]:
    async with serving_inbox() as (inbox, base_url):
        defs = directory / "defs"
        defs.mkdir(parents=True, exist_ok=True)
        # The services inherit the test process's environment (services.stack.service_env);
        # an env: reference is what the default secret rules allow anywhere.
        os.environ[SECRET_ENV] = SECRET
        (defs / "chaos.yaml").write_text(definitions(base_url, f"env:{SECRET_ENV}"))
        settings = chaos_settings(directory / "data", broker, **overrides)
        started = time.monotonic()
        exits = contextlib.ExitStack()
        # The stack starts (and later stops) its children from one long-lived worker
        # thread: children die with the thread that spawned them (PR_SET_PDEATHSIG).
        stack = await asyncio.to_thread(exits.enter_context, running_stack(settings, [defs]))
        try:
            # every request with the stack's admin key (services.stack.ensure_admin_key)
            headers = {"Authorization": f"Bearer {stack.admin_key}"}
            async with httpx.AsyncClient(timeout=REQUEST_TIMEOUT_S, headers=headers) as client:
                run = ChaosRun(name, script, stack, inbox, client, started=started)
                run.mark("stack started")
                try:
                    yield run
                finally:
                    for child, _ in run.extra_evaluators:
                        await asyncio.to_thread(child.stop, 10)
        finally:
            await asyncio.to_thread(exits.close)


async def run_with_faults(
    run: ChaosRun, faults: Callable[[ChaosRun], Awaitable[None]], pace_s: float = 0.0
) -> Outcome:
    """Feed the whole script (``pace_s`` between batches) while ``faults`` runs beside
    it; then the outcome."""
    feeding = asyncio.create_task(run.feed(pace_s=pace_s))
    try:
        await faults(run)
        run.mark("faults done")
        await feeding
        run.mark("fed")
    finally:
        feeding.cancel()
    return await run.outcome()
