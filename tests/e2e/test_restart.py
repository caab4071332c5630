"""Ctrl-C and start again loses nothing and counts nothing twice (the README's own flow).

`slawatch up` runs as a subprocess, as a user runs it. Events are accepted, the stack is
stopped with SIGINT right away (nothing waits for them to be evaluated: the ordered
drain must do it), started again on the same data directory — a new, empty embedded
broker, the same PostgreSQL data — and more events are sent. The final count of every
group must be what a run without the restart counts: each accepted event exactly once,
which for events inside the window is the brute-force count of the stream below. The
breach opened before the restart is resolved after it, and each of its two lifecycle
events reaches the receiver once.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import signal
import subprocess
import sys
import time
import uuid
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from shared.embedded import free_port
from tests.e2e.test_stack import Inbox, inbox, post  # noqa: F401 - inbox is a fixture
from tests.infra.broker import TestBroker
from tests.keys import bearer

pytestmark = pytest.mark.e2e

DEFINITIONS = """
apiVersion: slawatch/v1
kind: Agreement
metadata: {{name: acme-checkout}}
spec:
  type: SLA
  provider: shopco
  consumer: acme
  objectives:
    - name: availability
      kind: ratio
      service: checkout
      select: {{type: request}}
      good: {{outcome: good}}
      target: 0.95
      window: 5m
      groupBy: [customer]
      alerting: {{policy: threshold, minEvents: 10, severity: page}}
  notify: [{{match: {{}}, receivers: [test-hook]}}]
---
apiVersion: slawatch/v1
kind: Receiver
metadata: {{name: test-hook}}
spec: {{type: webhook, url: "http://127.0.0.1:{port}/alerts"}}
"""
STATUS = "/v1/objectives/acme-checkout/availability/status"
START_DEADLINE_S = 60.0
STOP_DEADLINE_S = 60.0
DEADLINE_S = 30.0

# (customer, outcome, count), in this order (one partition: the key is the service).
# Before the restart acme is breached (2 of 12 good); after it, 200 good events resolve
# the breach (202 of 212 ≥ 0.95). The others stay at or above the target throughout.
BEFORE: Batch = [
    ("acme", "bad", 10),
    ("acme", "good", 2),
    ("globex", "good", 40),
    ("initech", "good", 25),
]
AFTER: Batch = [
    ("acme", "good", 200),
    ("globex", "bad", 1),
    ("initech", "bad", 1),
    ("initech", "good", 5),
    ("umbrella", "good", 9),
]


def stream(batch: Batch, tag: str) -> bytes:
    now = int(time.time() * 1000)
    return b"\n".join(
        orjson.dumps(
            {
                "id": f"{tag}-{customer}-{outcome}-{i}",
                "service": "checkout",
                "type": "request",
                "time": now,
                "outcome": outcome,
                "attributes": {"customer": customer},
            }
        )
        for customer, outcome, count in batch
        for i in range(count)
    )


def reference(*batches: Batch) -> dict[str, tuple[int, int]]:
    """(good, valid) per customer: every event once."""
    good: Counter[str] = Counter()
    valid: Counter[str] = Counter()
    for batch in batches:
        for customer, outcome, count in batch:
            valid[customer] += count
            good[customer] += count if outcome == "good" else 0
    return {customer: (good[customer], valid[customer]) for customer in valid}


Batch = list[tuple[str, str, int]]


class Feeder:
    """A client that keeps sending small batches until ingest refuses one (503 while it
    drains, or no connection once it stopped); it remembers what was accepted."""

    def __init__(self, client: httpx.AsyncClient, url: str) -> None:
        self.client = client
        self.url = url
        self.accepted: Batch = []
        self.requests = 0

    async def run(self) -> str:
        """Feed until refused; returns how it was refused."""
        while True:
            customers = [("globex", "good"), ("initech", "good")] * 3
            body = b"\n".join(
                orjson.dumps(
                    {
                        "id": f"flow-{self.requests}-{i}",
                        "service": "checkout",
                        "type": "request",
                        "time": int(time.time() * 1000),
                        "outcome": outcome,
                        "attributes": {"customer": customer},
                    }
                )
                for i, (customer, outcome) in enumerate(customers)
            )
            try:
                response = await self.client.post(
                    self.url, content=body, headers={"content-type": "application/x-ndjson"}
                )
            except httpx.TransportError as exc:
                return type(exc).__name__
            self.requests += 1
            if response.status_code != 202:
                return f"{response.status_code} {response.headers.get('retry-after')}"
            for item in response.json()["results"]:
                if item["status"] == "accepted":
                    self.accepted.append((*customers[item["index"]], 1))


class Up:
    """`slawatch up` as a subprocess; its console output in a file."""

    def __init__(self, env: dict[str, str], output: Path) -> None:
        self.env = env
        self.output = output
        self.process: subprocess.Popen[bytes] | None = None
        self.since = 0
        self.url = {
            name: f"http://127.0.0.1:{env[f'SLAWATCH_{name.upper()}_PORT']}"
            for name in ("ingest", "evaluator", "notifier")
        }

    def start(self) -> None:
        self.since = self.output.stat().st_size if self.output.exists() else 0
        with self.output.open("ab") as out:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", "up"],
                stdout=out,
                stderr=subprocess.STDOUT,
                env=self.env,
            )

    def admin_key(self) -> str:
        """The key `slawatch up` keeps in its data directory."""
        return (Path(self.env["SLAWATCH_DATA_DIR"]) / "admin.key").read_text().strip()

    def console(self) -> str:
        """What this run printed."""
        with self.output.open("rb") as out:
            out.seek(self.since)
            return out.read().decode(errors="replace")

    async def wait_up(self) -> None:
        assert self.process is not None
        async with asyncio.timeout(START_DEADLINE_S):
            while "slawatch is up." not in self.console():
                assert self.process.poll() is None, self.console()
                await asyncio.sleep(0.2)

    async def interrupt(self) -> int:
        """Ctrl-C, then wait for the ordered stop to finish."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return await asyncio.wait_for(asyncio.to_thread(self.process.wait), STOP_DEADLINE_S)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


@contextlib.contextmanager
def slawatch_up(env: dict[str, str], output: Path) -> Iterator[Up]:
    up = Up(env, output)
    try:
        yield up
    finally:
        up.kill()  # only after a failure: the children die with it (PR_SET_PDEATHSIG)


async def until(probe: Callable[[], Awaitable[bool]], what: str) -> None:
    try:
        async with asyncio.timeout(DEADLINE_S):
            while not await probe():
                await asyncio.sleep(0.1)
    except TimeoutError:
        raise AssertionError(f"not within {DEADLINE_S:.0f} s: {what}") from None


async def per_group(client: httpx.AsyncClient, up: Up) -> dict[str, tuple[int, int]]:
    response = await client.get(f"{up.url['evaluator']}{STATUS}")
    response.raise_for_status()
    return {g["group"]["customer"]: (g["good"], g["valid"]) for g in response.json()["groups"]}


def environment(tmp_path: Path, hook_port: int, broker: TestBroker) -> dict[str, str]:
    defs = tmp_path / "defs"
    defs.mkdir()
    (defs / "shop.yaml").write_text(DEFINITIONS.format(port=hook_port))
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    env |= {
        "SLAWATCH_DATA_DIR": str(tmp_path / "data"),
        "SLAWATCH_DEFINITIONS_PATH": str(defs),
        "SLAWATCH_EMBEDDED_KAFKA_PORT": "0",
        "SLAWATCH_EMBEDDED_POSTGRES_PORT": "0",
        "SLAWATCH_INGEST_PORT": str(free_port()),
        "SLAWATCH_EVALUATOR_PORT": str(free_port()),
        "SLAWATCH_NOTIFIER_PORT": str(free_port()),
        "SLAWATCH_KAFKA_SESSION_TIMEOUT_MS": "6000",
        "SLAWATCH_KAFKA_HEARTBEAT_INTERVAL_MS": "500",
        "SLAWATCH_DELIVERY_POLL_INTERVAL_MS": "100",
        "SLAWATCH_TOPIC_PREFIX": f"e2e{uuid.uuid4().hex[:8]}",
    }
    if broker.apache_kafka:  # make test-kafka: the session's cluster instead of Tansu
        env["SLAWATCH_KAFKA_BOOTSTRAP"] = broker.bootstrap
        env["SLAWATCH_TOPIC_REPLICATION_FACTOR"] = str(broker.replication_factor)
    return env


async def test_ctrl_c_and_start_again_counts_every_event_once(
    tmp_path: Path,
    inbox: tuple[Inbox, int],  # noqa: F811 - the fixture imported above
    broker: TestBroker,
) -> None:
    box, hook_port = inbox
    env = environment(tmp_path, hook_port, broker)
    output = tmp_path / "console.txt"
    async with httpx.AsyncClient(timeout=10) as client:
        with slawatch_up(env, output) as up:
            up.start()
            await up.wait_up()
            key = up.admin_key()
            # the first start prints the key it created, with a ready curl line
            assert key in up.console() and "Authorization: Bearer" in up.console()
            client.headers.update(bearer(key))
            if not broker.apache_kafka:
                assert "keeps events in memory only" in up.console()
            await post(client, f"{up.url['ingest']}/v1/events", stream(BEFORE, "before"))
            # Ctrl-C while a client is still sending: whatever ingest accepted until it
            # refused must survive the restart (ingest stops before the evaluator).
            feeder = Feeder(client, f"{up.url['ingest']}/v1/events")
            feeding = asyncio.create_task(feeder.run())

            async def fed() -> bool:
                return feeder.requests >= 3

            await until(fed, "a few batches accepted")
            assert await up.interrupt() == 0, up.console()
            refused = await asyncio.wait_for(feeding, DEADLINE_S)
        before = BEFORE + feeder.accepted
        first_run = up.console()
        stopped = [
            first_run.index(f"slawatch: {name} stopped (code 0)")
            for name in ("ingest", "evaluator", "notifier")
        ]
        assert stopped == sorted(stopped), first_run

        with slawatch_up(env, output) as up:
            up.start()
            await up.wait_up()
            assert up.admin_key() == key and key not in up.console()  # reused, not shown
            # restored from the checkpoint the evaluator wrote while draining, once the
            # group assigned its partitions (readiness does not wait for that)
            restored = reference(before)

            async def was_restored() -> bool:
                return await per_group(client, up) == restored

            await until(was_restored, f"the state before the restart: {restored} ({refused})")
            await post(client, f"{up.url['ingest']}/v1/events", stream(AFTER, "after"))

            expected = reference(before, AFTER)

            async def all_counted() -> bool:
                return await per_group(client, up) == expected

            await until(all_counted, f"every event counted once: {expected}")
            resolved = await box.wait_for("breach.resolved", DEADLINE_S)
            opened = await box.wait_for("breach.opened", DEADLINE_S)
            assert resolved["id"] == opened["id"]
            assert opened["group"] == {"customer": "acme"}
            breaches = (await client.get(f"{up.url['notifier']}/v1/breaches")).json()
            items = breaches["items"] if isinstance(breaches, dict) else breaches
            assert [(b["id"], b["status"]) for b in items] == [(opened["id"], "resolved")]
            assert await up.interrupt() == 0, up.console()
    assert len(box.keys) == len(set(box.keys)) == 2, box.keys
