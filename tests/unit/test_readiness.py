"""Readiness checks, the topic assessment and the outage rules (pure or in-memory)."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest
from aiokafka.errors import KafkaConnectionError, UnknownTopicOrPartitionError
from sqlalchemy import exc as sa_exc

from shared.readiness import CheckResult, Monitor, report, run_checks
from shared.reconnect import Backoff, is_transient, retrying
from shared.topic_guard import Assessment, assess


async def test_checks_run_concurrently_and_a_hanging_one_times_out() -> None:
    release = asyncio.Event()

    async def hangs() -> bool:
        await release.wait()
        return True

    async def fine() -> bool:
        return True

    async def broken() -> bool:
        raise ConnectionRefusedError("connect call failed")

    results = await run_checks({"db": hangs, "broker": fine, "topics": broken}, timeout_s=0.05)
    release.set()
    assert results == {
        "db": CheckResult(False, "timeout after 0.05 s"),
        "broker": CheckResult(True),
        "topics": CheckResult(False, "ConnectionRefusedError: connect call failed"),
    }
    assert report(results) == (
        False,
        {
            "ready": False,
            "checks": {
                "db": {"ok": False, "reason": "timeout after 0.05 s"},
                "broker": {"ok": True},
                "topics": {"ok": False, "reason": "ConnectionRefusedError: connect call failed"},
            },
        },
    )


async def test_monitor_answers_from_its_last_probe_and_goes_stale() -> None:
    now = [0.0]
    answers = [CheckResult(True), CheckResult(False, "down")]

    async def probe() -> CheckResult:
        return answers.pop(0)

    monitor = Monitor(probe, interval_s=1.0, stale_after_s=5.0, clock=lambda: now[0])
    assert (await monitor.check()).ok is False  # not probed yet
    await monitor.probe_once()
    assert await monitor.check() == CheckResult(True)
    await monitor.probe_once()
    assert await monitor.check() == CheckResult(False, "down")
    now[0] = 10.0
    assert (await monitor.check()).reason == "no probe for 10 s"


async def test_monitor_starts_no_second_probe_while_one_hangs() -> None:
    started = 0
    release = asyncio.Event()

    async def probe() -> bool:
        nonlocal started
        started += 1
        await asyncio.shield(release.wait())  # ignores the cancel, like a hung close
        return True

    monitor = Monitor(probe, timeout_s=0.02)
    assert (await monitor.probe_once()).reason == "timeout after 0.02 s"
    assert (await monitor.probe_once()).reason == "previous probe still hanging"
    assert started == 1
    release.set()


@pytest.mark.parametrize(
    ("present", "expected"),
    [
        ({"a": 2, "b": 1}, Assessment()),
        ({"a": 2}, Assessment(missing=("b",))),
        ({}, Assessment(missing=("a", "b"))),
        ({"a": 4, "b": 1}, Assessment(wrong=(("a", 4, 2),))),
    ],
)
def test_assess(present: dict[str, int], expected: Assessment) -> None:
    assert assess({"a": 2, "b": 1}, present) == expected


def test_assessment_reason() -> None:
    found = Assessment(missing=("b",), wrong=(("a", 4, 2),))
    assert found.reason() == "topics missing: b; topic a has 4 partitions, configured 2"
    assert Assessment().reason() is None


def _wrapped(orig: BaseException, **kwargs: bool) -> sa_exc.DBAPIError:
    return sa_exc.DBAPIError("SELECT 1", None, orig, **kwargs)  # type: ignore[arg-type]


class _SqlState(Exception):
    def __init__(self, sqlstate: str) -> None:
        super().__init__(sqlstate)
        self.sqlstate = sqlstate


@pytest.mark.parametrize(
    ("error", "transient"),
    [
        (ConnectionRefusedError(), True),
        (ConnectionResetError(), True),
        (TimeoutError(), True),
        (asyncpg.ConnectionDoesNotExistError("closed"), True),
        (asyncpg.CannotConnectNowError("starting up"), True),
        (asyncpg.AdminShutdownError("terminating"), True),
        (sa_exc.OperationalError("x", None, Exception("y")), True),  # type: ignore[arg-type]
        (sa_exc.InterfaceError("x", None, Exception("y")), True),  # type: ignore[arg-type]
        (_wrapped(Exception("gone"), connection_invalidated=True), True),
        (_wrapped(_SqlState("08006")), True),
        (_wrapped(_SqlState("57P01")), True),
        (KafkaConnectionError(), True),
        (UnknownTopicOrPartitionError(), True),
        (_wrapped(_SqlState("22001")), False),  # a value too long: bad data
        (_wrapped(_SqlState("23505")), False),  # unique violation: a bug
        (ValueError("bug"), False),
        (RuntimeError("wrapped"), False),
    ],
)
def test_is_transient(error: BaseException, transient: bool) -> None:
    assert is_transient(error) is transient


def test_is_transient_follows_causes() -> None:
    try:
        try:
            raise ConnectionResetError("reset by peer")
        except OSError as inner:
            raise RuntimeError("while claiming") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


def test_backoff_doubles_up_to_its_cap() -> None:
    backoff = Backoff(base_s=0.2, max_s=1.0)
    assert [backoff.delay(n) for n in range(1, 6)] == [0.2, 0.4, 0.8, 1.0, 1.0]


async def test_retrying_restarts_after_transient_failures_only() -> None:
    stop = asyncio.Event()
    runs: list[int] = []
    rewinds: list[int] = []

    async def loop() -> None:
        runs.append(len(runs))
        if len(runs) < 3:
            raise ConnectionRefusedError("database restarting")
        stop.set()

    async def rewind() -> None:
        rewinds.append(len(runs))

    await retrying("loop", loop, stop, before_restart=rewind, backoff=Backoff(0.001, 0.001))
    assert runs == [0, 1, 2] and rewinds == [1, 2]

    async def buggy() -> None:
        raise ValueError("a bug, not an outage")

    with pytest.raises(ValueError, match="a bug"):
        await retrying("buggy", buggy, asyncio.Event(), backoff=Backoff(0.001, 0.001))
