"""Faults only a real cluster has: a partition leader dies; an evaluator replica dies.

Apache Kafka only (``SLAWATCH_TEST_BROKER=kafka``, ``make test-kafka``): the embedded
broker is a single node with no replicas to fail over to.

* The leader of the busiest partition of the events topic is SIGKILLed mid-stream
  (RF 3, ``min.insync.replicas=2``: acks=all writes go on with two replicas) and
  started again later. Expected: 0 lost, 0 double-counted, 0 lost breaches.
* Three evaluator processes share one consumer group over 12 partitions; the one
  holding the most groups is SIGKILLed and not started again. Its partitions move to
  the other two, which restore its last checkpoints and read on from there. Expected:
  results identical to the reference.
"""

from __future__ import annotations

import asyncio
import os
import random
import signal
import time

import httpx
import pytest
from aiokafka import TopicPartition

from shared import kafka
from tests.chaos import observe
from tests.chaos.compare import Fault
from tests.chaos.conftest import SEED, Judge, StartRun
from tests.chaos.harness import ChaosBroker, ChaosRun, run_with_faults
from tests.chaos.script import Script

KAFKA_ONLY = (
    "Apache Kafka only: the embedded broker is one node without replicas "
    "(run with SLAWATCH_TEST_BROKER=kafka, make test-kafka)"
)
pytestmark = [
    pytest.mark.chaos,
    # A mark, not a skip in a fixture: it is decided before the reference run is made.
    pytest.mark.skipif(os.environ.get("SLAWATCH_TEST_BROKER") != "kafka", reason=KAFKA_ONLY),
]

PACE_S = 0.25
REPLICA_PARTITIONS = 12
OWNERSHIP_DEADLINE_S = 90.0


@pytest.fixture
def apache_kafka(chaos_broker: ChaosBroker) -> ChaosBroker:
    """The cluster this session started (not an external broker, which it cannot kill)."""
    if chaos_broker.kind != "kafka" or chaos_broker.cluster is None:
        pytest.skip(KAFKA_ONLY)
    return chaos_broker


async def test_leader_of_busiest_partition_killed(
    apache_kafka: ChaosBroker, script: Script, judge: Judge, start_run: StartRun
) -> None:
    cluster = apache_kafka.cluster
    rng = random.Random(f"{SEED}:leader")
    batches = len(script.batches)
    kill_at = rng.randrange(batches // 5, batches // 3)
    back_at = rng.randrange(batches // 2, 2 * batches // 3)

    async def faults(run: ChaosRun) -> None:
        topic = f"{run.settings.topic_prefix}.events"
        await run.wait_batches(kill_at)
        partition = await busiest_partition(run, topic)
        leader = await cluster.leader_of(topic, partition)
        start = time.monotonic()
        cluster.kill(leader)
        await cluster.wait_leader(topic, partition, not_node=leader)
        await run.wait_batches(back_at)
        cluster.start(leader)  # from the main thread: see tests.infra.apache_kafka
        await cluster.wait_ready()
        run.faults.append(
            Fault(
                f"SIGKILL Kafka node {leader} (leader of {topic}/{partition}) at "
                f"+{start - run.started:.1f} s, back after {time.monotonic() - start:.1f} s",
                start,
                time.monotonic(),
            )
        )

    started = time.monotonic()
    async with start_run("kafka-leader-kill") as run:
        got = await run_with_faults(run, faults, pace_s=PACE_S)
        report = judge("kafka-leader-kill", got, started, run)
    assert report.ok, report.as_json()


async def test_evaluator_replica_killed(
    apache_kafka: ChaosBroker, script: Script, judge: Judge, start_run: StartRun
) -> None:
    rng = random.Random(f"{SEED}:replicas")
    batches = len(script.batches)
    kill_at = rng.randrange(batches // 3, 2 * batches // 3)

    async def faults(run: ChaosRun) -> None:
        await run.wait_batches(kill_at)
        owners = await ownership(run)
        victim = max(owners, key=lambda url: len(owners[url][1]))
        assert owners[victim][1], f"no evaluator holds data yet: {owners}"
        start = time.monotonic()
        if victim == run.stack.url("evaluator"):
            assert run.stack.supervisor is not None
            run.stack.supervisor.pause()  # killed for good: its partitions must move
            child = run.stack.services["evaluator"]
        else:
            child = next(c for c, port in run.extra_evaluators if victim.endswith(f":{port}"))
        child.process.send_signal(signal.SIGKILL)
        await asyncio.to_thread(child.process.wait)
        run.retired_evaluators.add(victim)
        await all_partitions_owned(run)
        run.faults.append(
            Fault(
                f"SIGKILL evaluator {victim} (partitions {sorted(owners[victim][0])}) at "
                f"+{start - run.started:.1f} s; partitions moved after "
                f"{time.monotonic() - start:.1f} s",
                start,
                time.monotonic(),
            )
        )

    started = time.monotonic()
    async with start_run("kafka-evaluator-replicas", events_partitions=REPLICA_PARTITIONS) as run:
        run.start_evaluator_replica()
        run.start_evaluator_replica()
        await all_partitions_owned(run, instances=3)
        got = await run_with_faults(run, faults, pace_s=PACE_S)
        report = judge("kafka-evaluator-replicas", got, started, run)
    assert report.ok, report.as_json()


async def busiest_partition(run: ChaosRun, topic: str) -> int:
    """The partition with the most records so far (end offsets are exact on Kafka)."""
    consumer = kafka.consumer(run.settings, group_id=None)
    await consumer.start()
    try:
        parts = [TopicPartition(topic, p) for p in range(run.settings.events_partitions)]
        ends = await consumer.end_offsets(parts)
    finally:
        await consumer.stop()
    return max(parts, key=lambda tp: ends[tp]).partition


async def ownership(run: ChaosRun) -> dict[str, tuple[set[int], set[int]]]:
    found = {}
    for url in run.evaluator_urls():
        found[url] = await observe.evaluator_ownership(run.client, url)
    return found


async def all_partitions_owned(run: ChaosRun, instances: int | None = None) -> None:
    """Until the live evaluators own every partition between them, each one once (and,
    given ``instances``, each of that many owns some)."""
    wanted = set(range(run.settings.events_partitions))
    async with asyncio.timeout(OWNERSHIP_DEADLINE_S):
        while True:
            try:
                owned = [o for o, _ in (await ownership(run)).values()]
            except httpx.HTTPError:
                owned = []
            union = set().union(*owned) if owned else set()
            disjoint = sum(len(o) for o in owned) == len(union)
            spread = instances is None or sum(bool(o) for o in owned) == instances
            if union == wanted and disjoint and spread:
                return
            await asyncio.sleep(0.25)
