"""Chaos suite fixtures: the broker choice, the scripted stream, the fault-free
reference run (once per session) and the report every case adds its figures to.

The report: one line per case in the terminal summary, and a JSON file
(``chaos-report.json`` in the session's temporary directory, and at
``$SLAWATCH_CHAOS_REPORT`` when that is set) that docs/reliability.md quotes.

``SLAWATCH_CHAOS_SEED`` changes the seed of the stream and of the fault points
(default fixed, so every run injects the same faults at the same stream positions).
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import time
from collections.abc import AsyncIterator, Callable, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.chaos.compare import CaseReport, Outcome, compare
from tests.chaos.harness import ChaosBroker, ChaosRun, chaos_run, postgres_template, run_with_faults
from tests.chaos.script import Script, build_script

SEED = int(os.environ.get("SLAWATCH_CHAOS_SEED", "20261204"))
EVENTS = 3_000
BATCH = 50

_reports: list[CaseReport] = []
_report_paths: list[Path] = []


@pytest.fixture(scope="session")
def chaos_broker(request: pytest.FixtureRequest) -> ChaosBroker:
    """The session's Apache Kafka cluster under ``SLAWATCH_TEST_BROKER=kafka``; else
    each run starts its own embedded broker (so a broker restart hits that run only)."""
    if os.environ.get("SLAWATCH_TEST_BROKER", "embedded") != "kafka":
        return ChaosBroker()
    try:
        broker = request.getfixturevalue("broker")
    except pytest.FixtureLookupError:
        pytest.skip("needs the `broker` fixture of tests/conftest.py (tests/infra/broker.py)")
    if not broker.apache_kafka:
        pytest.skip(f"SLAWATCH_TEST_BROKER=kafka but the session's broker is {broker.kind}")
    return ChaosBroker("kafka", broker.bootstrap, broker.cluster, broker.replication_factor)


@pytest.fixture(scope="session")
def pg_template() -> Iterator[Path]:
    """A migrated PostgreSQL data directory each run starts from (a copy of it); out
    of pytest's directory for the reason given in tests.chaos.harness.chaos_run."""
    directory = Path(tempfile.mkdtemp(prefix="slawatch-chaos-pg-"))
    try:
        yield postgres_template(directory)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


@pytest.fixture(scope="session")
def script() -> Script:
    return build_script(SEED, EVENTS, BATCH)


@pytest.fixture(scope="session")
async def reference(
    chaos_broker: ChaosBroker,
    script: Script,
    pg_template: Path,
    tmp_path_factory: pytest.TempPathFactory,
) -> Outcome:
    """The same stream through a stack without faults: what every case must equal."""
    directory = tmp_path_factory.mktemp("chaos-reference")
    async with chaos_run("reference", script, directory, chaos_broker, pg_template) as run:
        return await run_with_faults(run, _no_faults)


async def _no_faults(_run: object) -> None:
    return None


class Judge:
    """Compares a case's outcome with the reference and records the report."""

    def __init__(self, broker: ChaosBroker, script: Script, reference: Outcome) -> None:
        self.broker = broker
        self.script = script
        self.reference = reference

    def __call__(
        self, case: str, got: Outcome, started: float, run: ChaosRun, note: str = "", **extra: Any
    ) -> CaseReport:
        """The report of ``case`` (``extra``: more :class:`CaseReport` fields), printed
        and kept for the JSON file."""
        report = compare(
            case, self.broker.kind, self.script.seed, len(self.script.events), self.reference, got
        )
        report.seconds = time.monotonic() - started
        report.client_retries = run.retries
        report.phases = dict(run.phases)
        report.note = note
        for name, value in extra.items():
            setattr(report, name, value)
        _reports.append(report)
        print(report.line())
        return report


StartRun = Callable[..., contextlib.AbstractAsyncContextManager[ChaosRun]]


@pytest.fixture
def start_run(
    chaos_broker: ChaosBroker, script: Script, pg_template: Path, tmp_path: Path
) -> StartRun:
    """``async with start_run(case, **settings_overrides) as run``: this test's stack."""

    def start(case: str, **overrides: Any) -> contextlib.AbstractAsyncContextManager[ChaosRun]:
        return chaos_run(case, script, tmp_path, chaos_broker, pg_template, **overrides)

    return start


@pytest.fixture
async def judge(
    chaos_broker: ChaosBroker, script: Script, reference: Outcome
) -> AsyncIterator[Judge]:
    yield Judge(chaos_broker, script, reference)


@pytest.fixture(scope="session", autouse=True)
def _report_file(tmp_path_factory: pytest.TempPathFactory) -> None:
    _report_paths.append(tmp_path_factory.getbasetemp() / "chaos-report.json")
    if os.environ.get("SLAWATCH_CHAOS_REPORT"):
        _report_paths.append(Path(os.environ["SLAWATCH_CHAOS_REPORT"]))


def pytest_sessionfinish(session: pytest.Session) -> None:
    if not _reports:
        return
    document = {
        "seed": SEED,
        "events": EVENTS,
        "generated_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "cases": [r.as_json() for r in _reports],
    }
    for path in _report_paths:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(orjson.dumps(document, option=orjson.OPT_INDENT_2))


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if not _reports:
        return
    terminalreporter.section("chaos suite")
    for report in _reports:
        terminalreporter.write_line(report.line())
    for path in _report_paths:
        terminalreporter.write_line(f"chaos report: {path}")
