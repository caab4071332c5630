"""SIGKILL of ingest, of the evaluator and of the notifier at seeded points, over
several rounds; each run compared item by item with the fault-free reference.

Expected (DESIGN.md, "Evaluator" and "Notifier"): 0 lost events (an event without a
202 is sent again by the producer; ingest answers 202 only after the broker's
acknowledgement), 0 counted twice (the evaluator's dedup by ``id`` and state + offset
in one checkpoint), 0 lost breach events (deterministic ids, published before the
checkpoint), every delivery made; a delivery repeats only when the notifier died with
it in flight, with the same idempotency key and body.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from tests.chaos.compare import Outcome
from tests.chaos.conftest import SEED, Judge, StartRun
from tests.chaos.harness import ChaosRun, expected_total_counts, run_with_faults
from tests.chaos.script import Script

pytestmark = pytest.mark.chaos

ROUNDS = 3
POLL_S = 0.05
#: Between batches for the evaluator and notifier cases: the stream lasts ~10 s, so
#: their kills (at points of their own progress) land while it still flows.
PACE_S = 0.15


def test_reference_is_a_clean_run(script: Script, reference: Outcome) -> None:
    """The harness itself: the fault-free run counted every event once, breached
    several times, and delivered each breach event once per receiver, signed."""
    totals = {k: v for k, v in reference.counts.items() if "-total|" in k}
    assert totals == expected_total_counts(script)
    kinds = {kind for _, kind, _ in reference.breaches}
    assert kinds == {"breach.opened", "breach.resolved"}
    assert len(reference.breaches) >= 20
    keys = [(r.receiver, r.key) for r in reference.requests]
    assert len(keys) == len(set(keys)) >= len(reference.breaches)
    assert all(r.signature_ok for r in reference.requests if r.receiver == "ops-hook")


async def test_ingest_sigkill(script: Script, judge: Judge, start_run: StartRun) -> None:
    """Ingest killed while a request is in flight: that request gets no 202 and is
    sent again; whatever part of it the broker had already stored is a repeat id."""
    rng = random.Random(f"{SEED}:ingest")
    points = sorted(rng.sample(range(2, len(script.batches) - 2), ROUNDS))

    async def faults(run: ChaosRun) -> None:
        for point in points:
            await run.wait_batches(point)
            # Into the next request, which is on its way now: pacing, not a wait.
            await asyncio.sleep(rng.uniform(0.0, 0.03))
            await run.kill("ingest")

    started = time.monotonic()
    async with start_run("ingest-sigkill") as run:
        got = await run_with_faults(run, faults)
        report = judge("ingest-sigkill", got, started, run)
    assert report.ok, report.as_json()
    assert report.duplicate_deliveries == 0


async def test_evaluator_sigkill(script: Script, judge: Judge, start_run: StartRun) -> None:
    """The evaluator killed at seeded points of its own progress (events counted so
    far): it restores the last checkpoint and reads again from its offset."""
    rng = random.Random(f"{SEED}:evaluator")
    total = len(script.events)
    thresholds = sorted(int(rng.uniform(0.1, 0.9) * total) for _ in range(ROUNDS))

    async def faults(run: ChaosRun) -> None:
        for threshold in thresholds:
            while await counted(run) < threshold:
                await asyncio.sleep(POLL_S)
            await run.kill("evaluator")

    started = time.monotonic()
    async with start_run("evaluator-sigkill") as run:
        got = await run_with_faults(run, faults, pace_s=PACE_S)
        report = judge("evaluator-sigkill", got, started, run)
    assert report.ok, report.as_json()
    assert report.duplicate_deliveries == 0


async def test_notifier_sigkill(
    script: Script, judge: Judge, reference: Outcome, start_run: StartRun
) -> None:
    """The notifier killed while a webhook request is in flight, at seeded delivery
    counts: the row stays ``delivering`` and is sent again after its lease, with the
    same key; breach events it had not yet read are read again from its offset."""
    rng = random.Random(f"{SEED}:notifier")
    count = len(reference.requests)
    points = sorted(rng.sample(range(3, int(count * 0.8)), ROUNDS))

    async def faults(run: ChaosRun) -> None:
        for point in points:
            await run.inbox.wait_for(
                lambda p=point: len(run.inbox.requests) >= p and run.inbox.in_flight(), 120
            )
            await run.kill("notifier")

    started = time.monotonic()
    async with start_run("notifier-sigkill") as run:
        got = await run_with_faults(run, faults, pace_s=PACE_S)
        report = judge("notifier-sigkill", got, started, run)
    assert report.ok, report.as_json()


async def counted(run: ChaosRun) -> int:
    """Events the evaluator has counted (its ``-total`` objectives); 0 while it is down."""
    counts = await run._counts()
    return sum(valid for key, (_, valid) in counts.items() if "-total|" in key)
