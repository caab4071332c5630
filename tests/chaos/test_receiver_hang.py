"""A receiver that hangs: the other receiver's deliveries go on, nothing is lost.

``team-hook`` stops answering (each request stays open until the notifier's delivery
timeout gives up on it) for a few seconds of the stream, then recovers. Expected: every
delivery of both receivers made (the hung ones retried with the same key: those
repeats are in flight at the fault); the healthy ``ops-hook`` not held up.

The figure the issue sets, at most 100 ms of extra wait for the healthy receiver, is
measured and reported (outbox row made → request arrived, against the reference run),
not asserted: on 2 shared cores a scheduling hiccup alone can exceed it. What is
asserted is the failure it guards against: a healthy delivery queued behind a hung one
waits a whole delivery timeout (2 s here), and none may.
"""

from __future__ import annotations

import asyncio
import random
import statistics
import time

import pytest

from tests.chaos.compare import Fault, Outcome, delivery_waits_ms
from tests.chaos.conftest import SEED, Judge, StartRun
from tests.chaos.harness import ChaosRun, run_with_faults
from tests.chaos.script import Script

pytestmark = pytest.mark.chaos

PACE_S = 0.2
#: Longer than the delivery timeout (2 s), so hung attempts time out and are retried,
#: short enough that the circuit breaker (5 failures in a row) seldom opens: an open
#: circuit adds a minute of deferrals here (the half-open trial window), not a loss.
HANG_S = 3.0
HUNG = "team-hook"
HEALTHY = "ops-hook"


async def test_receiver_hangs(
    script: Script, judge: Judge, reference: Outcome, start_run: StartRun
) -> None:
    rng = random.Random(f"{SEED}:hang")
    batches = len(script.batches)
    hang_at = rng.randrange(batches // 10, batches // 4)
    window: list[float] = []

    async def faults(run: ChaosRun) -> None:
        await run.wait_batches(hang_at)
        start, window_start = time.monotonic(), time.time()
        run.inbox.hang(HUNG)
        await asyncio.sleep(HANG_S)  # the fault's length, not a wait for a condition
        # ... and until a request really hangs, or the case would test nothing.
        await run.inbox.wait_for(
            lambda: any(r.receiver == HUNG and r.answered is None for r in run.inbox.requests),
            60,
        )
        run.inbox.recover(HUNG)
        window.extend((window_start, time.time()))
        run.faults.append(
            Fault(
                f"{HUNG} hung at +{start - run.started:.1f} s for {time.monotonic() - start:.1f} s",
                start,
                time.monotonic(),
            )
        )

    started = time.monotonic()
    async with start_run("receiver-hang") as run:
        got = await run_with_faults(run, faults, pace_s=PACE_S)
        during = delivery_waits_ms(got, HEALTHY, window[0], window[1])
        baseline = delivery_waits_ms(reference, HEALTHY)
        hung = sum(r.receiver == HUNG for r in got.requests if window[0] <= r.arrived_wall)
        waits = {
            "count": float(len(during)),
            "p50": statistics.median(during) if during else 0.0,
            "max": max(during, default=0.0),
            "over_100ms": float(sum(w > 100 for w in during)),
            "reference_p50": statistics.median(baseline),
            "reference_max": max(baseline),
        }
        report = judge("receiver-hang", got, started, run, healthy_wait_ms=waits)
    assert report.ok, report.as_json()
    assert hung, "the hung receiver got no request while it hung: the case tested nothing"
    assert during, "no healthy delivery while the other receiver hung: the case tested nothing"
    assert waits["max"] < run.settings.delivery_timeout_ms, waits
