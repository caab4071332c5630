"""The one stop sequence (``shared.shutdown``): order, the shared grace budget, what is
cancelled and logged past it, failures that do not skip the closes, aborts."""

from __future__ import annotations

import asyncio
import logging

import pytest

from shared.shutdown import MIN_WAIT_S, Shutdown, first_set


class FakeClock:
    """Monotonic ms that move only when a step says so."""

    def __init__(self) -> None:
        self.now = 0

    def __call__(self) -> int:
        return self.now


def never() -> asyncio.Task[bool]:
    """A task that ends only when cancelled."""
    return asyncio.create_task(asyncio.Event().wait(), name="stuck")


async def test_stop_steps_in_order_then_closes_last_added_first() -> None:
    done: list[str] = []
    shutdown = Shutdown("svc", 5.0)

    async def drained() -> None:
        done.append("wait drain")

    told = asyncio.Event()

    async def finishing() -> None:  # a loop that ends once told to stop
        await told.wait()
        done.append("task ran")

    shutdown.close("database", lambda: done.append("close database"))

    async def producer_stop() -> None:
        done.append("close producer")

    shutdown.close("producer", producer_stop, floor_s=0.5)
    shutdown.signal("intake", lambda: done.append("signal intake"))
    shutdown.wait("drain", drained)

    def tell_server() -> None:
        done.append("signal server")
        told.set()

    shutdown.signal("server", tell_server)
    shutdown.tasks("loops", [asyncio.create_task(finishing(), name="loop")])

    outcome = await shutdown.run()

    assert done == [
        "signal intake",
        "wait drain",
        "signal server",
        "task ran",
        "close producer",
        "close database",
    ]
    assert outcome.cancelled == [] and outcome.given_up == [] and not outcome.aborted
    assert shutdown.errors == []


async def test_grace_exceeded_cancels_the_late_tasks_and_names_them(
    caplog: pytest.LogCaptureFixture,
) -> None:
    clock = FakeClock()
    shutdown = Shutdown("svc", 1.0, clock=clock)
    stuck = never()
    quick = asyncio.create_task(asyncio.sleep(0), name="quick")

    async def slow_drain() -> None:
        clock.now += 1_000  # this step used the whole budget
        await asyncio.Event().wait()

    closed: list[str] = []
    shutdown.wait("drain", slow_drain)
    shutdown.tasks("loops", [stuck, quick])
    shutdown.close("producer", lambda: closed.append("producer"))

    with caplog.at_level(logging.WARNING, logger="shared.shutdown"):
        outcome = await shutdown.run()

    assert stuck.cancelled() and quick.done() and not quick.cancelled()
    assert outcome.cancelled == ["stuck"]
    assert outcome.given_up == ["drain"]
    assert closed == ["producer"]
    [line] = [r for r in caplog.records if "cancelling" in r.getMessage()]
    assert line.getMessage() == "svc: shutdown grace exceeded; cancelling stuck"
    assert line.tasks == ["stuck"]  # type: ignore[attr-defined]


async def test_one_budget_for_all_steps() -> None:
    # After the first wait used the grace, the tasks step only gets MIN_WAIT_S: a task
    # that would have finished within a fresh grace is cancelled.
    clock = FakeClock()
    shutdown = Shutdown("svc", 10.0, clock=clock)

    async def spend_budget() -> None:
        clock.now += 10_000

    release = asyncio.Event()
    later = asyncio.create_task(release.wait(), name="later")
    shutdown.wait("drain", spend_budget)
    shutdown.tasks("loops", [later])
    assert shutdown.grace_ms == 10_000

    outcome = await shutdown.run()

    assert outcome.cancelled == ["later"] and later.cancelled()
    assert shutdown.remaining_s() <= 0 < MIN_WAIT_S


async def test_a_failing_step_skips_neither_the_next_steps_nor_the_closes(
    caplog: pytest.LogCaptureFixture,
) -> None:
    done: list[str] = []
    shutdown = Shutdown("svc", 5.0)

    def broken_signal() -> None:
        raise RuntimeError("signal broke")

    async def broken_close() -> None:
        raise OSError("flush failed")

    shutdown.close("database", lambda: done.append("database"))
    shutdown.close("producer", broken_close)
    shutdown.close("consumer", lambda: done.append("consumer"))
    shutdown.signal("intake", broken_signal)
    shutdown.signal("server", lambda: done.append("server"))

    with caplog.at_level(logging.ERROR, logger="shared.shutdown"):
        await shutdown.run()

    assert done == ["server", "consumer", "database"]
    assert [(name, type(e)) for name, e in shutdown.errors] == [
        ("intake", RuntimeError),
        ("producer", OSError),
    ]
    assert {r.getMessage() for r in caplog.records} == {
        "svc: shutdown step intake failed",
        "svc: shutdown step producer failed",
    }
    with pytest.raises(RuntimeError, match="signal broke"):
        shutdown.raise_error()


async def test_a_bounded_close_past_the_deadline_gets_its_floor_then_the_next_runs() -> None:
    clock = FakeClock()
    shutdown = Shutdown("svc", 1.0, clock=clock)
    done: list[str] = []
    shutdown.close("database", lambda: done.append("database"))
    shutdown.close("producer", lambda: asyncio.Event().wait(), floor_s=0.05)
    clock.now = 0

    async def spend_budget() -> None:
        clock.now += 5_000

    shutdown.wait("drain", spend_budget)
    outcome = await shutdown.run()

    assert outcome.given_up == ["producer"] and done == ["database"]
    assert shutdown.errors == []


async def test_an_unbounded_close_runs_to_its_end_past_the_deadline() -> None:
    clock = FakeClock()
    shutdown = Shutdown("svc", 0.0, clock=clock)
    done: list[str] = []

    async def leave_group() -> None:
        clock.now += 60_000
        await asyncio.sleep(MIN_WAIT_S * 2)
        done.append("left")

    shutdown.close("consumer", leave_group)
    outcome = await shutdown.run()
    assert done == ["left"] and outcome.given_up == []


async def test_a_cancelled_body_aborts_no_drain_tasks_cancelled_closes_run() -> None:
    done: list[str] = []
    loop_task = never()
    started = asyncio.Event()

    async def service() -> None:
        async with Shutdown("svc", 5.0) as shutdown:
            shutdown.close("database", lambda: done.append("database"))
            shutdown.signal("intake", lambda: done.append("signal"))
            shutdown.wait("drain", lambda: asyncio.sleep(0))
            shutdown.tasks("loops", [loop_task])
            started.set()
            await asyncio.Event().wait()

    running = asyncio.create_task(service())
    await started.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert done == ["database"]  # no signal: a crash, not a drain
    assert loop_task.cancelled()


async def test_cancelled_while_draining_cancels_the_tasks_and_still_closes() -> None:
    done: list[str] = []
    loop_task = never()
    draining = asyncio.Event()
    shutdown = Shutdown("svc", 30.0)

    async def drain() -> None:
        draining.set()
        await asyncio.Event().wait()

    shutdown.wait("drain", drain)
    shutdown.tasks("loops", [loop_task])
    shutdown.close("database", lambda: done.append("database"))
    running = asyncio.create_task(shutdown.run())
    await draining.wait()
    running.cancel()
    with pytest.raises(asyncio.CancelledError):
        await running
    assert loop_task.cancelled() and done == ["database"]
    assert shutdown.outcome.aborted and shutdown.outcome.cancelled == ["stuck"]


async def test_a_failed_start_still_closes_what_it_opened() -> None:
    done: list[str] = []
    with pytest.raises(LookupError):
        async with Shutdown("svc", 5.0) as shutdown:
            shutdown.close("database", lambda: done.append("database"))
            raise LookupError("catalog")
    assert done == ["database"] and not shutdown.outcome.aborted


async def test_the_sequence_runs_once() -> None:
    done: list[str] = []
    shutdown = Shutdown("svc", 5.0)
    shutdown.close("database", lambda: done.append("database"))
    await shutdown.run()
    await shutdown.run()
    assert done == ["database"]


class Server:
    """A serving loop that ends when told to stop."""

    def __init__(self) -> None:
        self.should_exit = asyncio.Event()

    async def serve(self) -> None:
        await self.should_exit.wait()

    def stop(self) -> None:
        self.should_exit.set()


async def test_close_server_stops_it_and_lets_it_end_even_after_an_abort() -> None:
    server = Server()
    serving = asyncio.create_task(server.serve(), name="http")
    shutdown = Shutdown("svc", 5.0)
    shutdown.close_server("http server", server, serving)
    outcome = await shutdown.run(abort=True)
    assert serving.done() and not serving.cancelled()
    assert outcome.cancelled == [] and outcome.aborted


async def test_close_server_cancels_a_server_that_does_not_end() -> None:
    stuck = never()
    shutdown = Shutdown("svc", 5.0)
    shutdown.close_server("http server", Server(), stuck, within_s=0.01)
    outcome = await shutdown.run()
    assert stuck.cancelled() and outcome.cancelled == ["stuck"]


async def test_first_set_returns_on_either_event() -> None:
    a, b = asyncio.Event(), asyncio.Event()
    b.set()
    await asyncio.wait_for(first_set(a, b), 5)
