"""The README's "Five minutes with curl", executed as written against a fresh
``slawatch up`` (the command ``make run`` runs) and the bundled receiver, each in its
own process, from a fresh working directory holding only ``examples/``.

Every ``sh`` block of the section runs in bash in order, with the ports of this run
substituted for 8080/8081/8082/9000 (the variables a block sets carry over to the
next), and each outcome the README states is asserted: 202 answers, the receiver's
``breach.opened`` and then ``breach.resolved`` for the same breach id, the breach in
the notifier's API, the CLI's table, the precise answers to bad input. A README change
to this section must keep this test green: it is how the README stays true.
"""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import signal
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from shared.embedded import free_port

pytestmark = pytest.mark.e2e

ROOT = Path(__file__).resolve().parents[2]
SECTION = "Five minutes with curl"
START_S = 180.0  # the first start initialises PostgreSQL
OUTCOME_S = 30.0


def section(title: str) -> str:
    text = (ROOT / "README.md").read_text()
    start = text.index(f"\n## {title}\n")
    end = text.find("\n## ", start + 1)
    return text[start : end if end != -1 else None]


def blocks(title: str) -> list[str]:
    return re.findall(r"```sh\n(.*?)```", section(title), re.DOTALL)


class Lines:
    """A child's output, line by line, read on a thread (the test waits on a queue)."""

    def __init__(self, process: subprocess.Popen[str]) -> None:
        self.seen: list[str] = []
        self._queue: queue.Queue[str | None] = queue.Queue()
        assert process.stdout is not None
        self._stream = process.stdout
        self._thread = threading.Thread(target=self._pump, args=(self._stream,), daemon=True)
        self._thread.start()

    def close(self) -> None:
        """After the child exited: the rest of its output read, the pipe closed."""
        self._thread.join(10)
        self._stream.close()

    def _pump(self, stream: object) -> None:
        for line in stream:  # type: ignore[attr-defined]
            self._queue.put(line.rstrip("\n"))
        self._queue.put(None)

    def until(self, pattern: str, timeout_s: float) -> re.Match[str]:
        """The first line from now on that matches ``pattern``."""
        while True:
            try:
                line = self._queue.get(timeout=timeout_s)
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} within {timeout_s} s") from None
            if line is None:
                raise AssertionError(f"output ended before {pattern!r}; saw {self.seen[-20:]}")
            self.seen.append(line)
            if found := re.search(pattern, line):
                return found


@dataclass
class Walkthrough:
    cwd: Path
    env: dict[str, str]
    ports: dict[str, int]
    receiver: Lines
    assigned: list[str]

    def substituted(self, block: str) -> str:
        for readme_port, name in ((8080, "ingest"), (8081, "evaluator"), (8082, "notifier")):
            block = block.replace(f"127.0.0.1:{readme_port}", f"127.0.0.1:{self.ports[name]}")
        return block.replace("--port 9000", f"--port {self.ports['receiver']}")

    def run(self, block: str) -> str:
        """One README block in bash, after the assignments of the blocks before it."""
        block = self.substituted(block)
        script = "\n".join(["set -eo pipefail", *self.assigned, block])
        done = subprocess.run(
            ["bash", "--norc", "-c", script],
            cwd=self.cwd,
            env=self.env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, f"{block}\nexit {done.returncode}: {done.stderr}"
        self.assigned += [line for line in block.splitlines() if re.match(r"^\w+=", line)]
        return done.stdout


@pytest.fixture(scope="module")
def walkthrough(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Walkthrough]:
    """One stack for the module's tests, in the order the README reads."""
    tmp_path = tmp_path_factory.mktemp("readme")
    if os.environ.get("SLAWATCH_TEST_BROKER") == "kafka":
        pytest.skip("the README walks through the embedded defaults (make test runs it)")
    ports = {
        name: free_port()
        for name in ("ingest", "evaluator", "notifier", "receiver", "kafka", "postgres")
    }
    shutil.copytree(ROOT / "examples", tmp_path / "examples")
    checkout = tmp_path / "examples" / "checkout.yaml"
    checkout.write_text(
        checkout.read_text().replace("127.0.0.1:9000", f"127.0.0.1:{ports['receiver']}")
    )
    (tmp_path / ".venv").symlink_to(ROOT / ".venv")
    env = {k: v for k, v in os.environ.items() if not k.startswith("SLAWATCH_")}
    env |= {
        "PYTHONUNBUFFERED": "1",
        "NO_COLOR": "1",
        "SLAWATCH_INGEST_PORT": str(ports["ingest"]),
        "SLAWATCH_EVALUATOR_PORT": str(ports["evaluator"]),
        "SLAWATCH_NOTIFIER_PORT": str(ports["notifier"]),
        "SLAWATCH_EMBEDDED_KAFKA_PORT": str(ports["kafka"]),
        "SLAWATCH_EMBEDDED_POSTGRES_PORT": str(ports["postgres"]),
    }
    slawatch = str(tmp_path / ".venv" / "bin" / "slawatch")
    children: list[subprocess.Popen[str]] = []
    outputs: list[Lines] = []

    def spawn(*argv: str) -> subprocess.Popen[str]:
        child = subprocess.Popen(
            [slawatch, *argv],
            cwd=tmp_path,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        children.append(child)
        return child

    try:
        up = Lines(spawn("up"))
        outputs.append(up)
        up.until(r"^slawatch is up\.", START_S)
        receiver = Lines(spawn("receiver", "--port", str(ports["receiver"])))
        outputs.append(receiver)
        receiver.until(r"listening|receiving|http://", 30)
        yield Walkthrough(tmp_path, env, ports, receiver, [])
    finally:
        for child in reversed(children):
            child.send_signal(signal.SIGINT)
        for child in reversed(children):
            try:
                child.wait(90)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()
        for lines in outputs:
            lines.close()


def answers(output: str) -> list[dict[str, Any]]:
    """The JSON objects curl printed, in order (curl adds no newline of its own)."""
    decoder = json.JSONDecoder()
    found: list[dict[str, Any]] = []
    at = output.find("{")
    while at != -1:
        value, end = decoder.raw_decode(output, at)
        found.append(value)
        at = output.find("{", end)
    return found


def test_five_minutes_with_curl_as_written(walkthrough: Walkthrough) -> None:
    start, key, send, recorded, bad, recover = blocks(SECTION)
    assert "make run" in start and "slawatch receiver --port 9000" in start

    walkthrough.run(key)
    assert any(line.startswith("KEY=") for line in walkthrough.assigned)

    # good requests, then failures: two 202 answers, and the receiver's breach.opened
    sent = answers(walkthrough.run(send))
    assert [a.get("accepted") for a in sent] == [5, 10], sent
    opened = walkthrough.receiver.until(r"breach\.opened \w+ acme-checkout/availability", OUTCOME_S)
    detail = walkthrough.receiver.until(r"SLI (\S+) < target 0\.95 .*; breach (\w+)", OUTCOME_S)
    assert opened is not None and float(detail.group(1)) == pytest.approx(0.5)
    breach_id = detail.group(2)

    # the notifier recorded it; the evaluator and the CLI show it
    shown = walkthrough.run(recorded)
    assert breach_id in shown and '"status": "open"' in shown
    assert '"objective_id": "acme-checkout/availability"' in shown
    assert re.search(r"\bpage\s+open\b.*acme-checkout.*availability", shown), shown
    assert re.search(r"availability \(ratio\).*breached", shown), shown

    # bad input: a precise answer each, nothing else lost
    mixed, wrong, anonymous = answers(walkthrough.run(bad))
    assert (mixed["accepted"], mixed["rejected"]) == (1, 1), mixed
    assert mixed["results"][1]["status"] == "rejected"
    assert "service" in json.dumps(mixed["results"][1])
    assert wrong["status"] == 422 and "service" in json.dumps(wrong)
    assert anonymous["status"] == 401

    # recovery: breach.resolved for the same breach
    assert [a.get("accepted") for a in answers(walkthrough.run(recover))] == [300]
    walkthrough.receiver.until(r"breach\.resolved \w+ acme-checkout/availability", OUTCOME_S)
    walkthrough.receiver.until(rf"; breach {breach_id}$", OUTCOME_S)


def without_optional(block: str) -> str:
    """``[--dry-run]``-style optional parts left out, as a first reader types it."""
    return re.sub(r" \[[^\]\n]*\]", "", block)


def test_definitions_and_reports_as_written(walkthrough: Walkthrough) -> None:
    if not walkthrough.assigned:  # run alone: KEY and auth as the walkthrough sets them
        walkthrough.run(blocks(SECTION)[1])
    manage, source_test, backtest = (without_optional(b) for b in blocks("Definitions"))

    out = walkthrough.run(manage)
    assert re.search(r"^\d+ document\(s\) valid$", out, re.MULTILINE), out
    assert re.search(r"\d+ created, \d+ changed, \d+ unchanged, \d+ deleted", out), out
    assert re.search(r"^\s+\d+\s+\S+ \S+\s+(created|changed)", out, re.MULTILINE), out
    assert '"$schema"' in out or '"properties"' in out  # the JSON Schema
    assert "kind: Agreement" in out  # the OpenSLO import's slawatch documents

    out = walkthrough.run(source_test)
    assert "source shop-orders: 3 record(s), 3 event(s), 0 rejected" in out, out

    out = walkthrough.run(backtest)
    assert "breach.opened" in out, out

    (report,) = blocks("Period reports")
    out = walkthrough.run(report)
    document = answers(out)[0]
    assert document["agreement"] == "acme-checkout" and "period" in document
    csv_rows = out[out.index("agreement,period,objective") :].splitlines()
    assert csv_rows[1].startswith("acme-checkout,")  # the current period's rows
