"""The short-log decisions of shared.logid: when a position past the log end means a
replaced log (reset at once), and when only a lagging high watermark (wait it out)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from prometheus_client import CollectorRegistry

from shared.logid import (
    SHORT_LOG_GRACE_MS,
    LogEndWatch,
    LogIdentity,
    ResetReason,
    ShortLogJudge,
    offset_resets,
)


@dataclass(frozen=True)
class TP:
    topic: str
    partition: int


@dataclass
class Record:
    offset: int


def test_the_judge_resets_only_after_the_grace() -> None:
    judge = ShortLogJudge(1_000)
    assert judge.observe(0, 10, 5, now_ms=0) is None
    assert judge.observe(0, 10, 5, now_ms=999) is None
    assert judge.observe(0, 10, 5, now_ms=1_000) is ResetReason.BEYOND_LOG_END


def test_a_log_end_that_catches_up_ends_the_short_spell() -> None:
    judge = ShortLogJudge(1_000)
    assert judge.observe(0, 10, 5, now_ms=0) is None
    assert judge.observe(0, 10, 10, now_ms=500) is None  # at the log end: fine
    assert judge.observe(0, 10, 5, now_ms=1_200) is None  # a new spell starts
    assert judge.observe(0, 10, 5, now_ms=2_199) is None
    assert judge.observe(0, 10, 5, now_ms=2_200) is ResetReason.BEYOND_LOG_END


def test_partitions_are_judged_apart() -> None:
    judge = ShortLogJudge(1_000)
    judge.observe(0, 10, 5, now_ms=0)
    assert judge.observe(1, 10, 5, now_ms=1_000) is None
    assert judge.observe(0, 10, 5, now_ms=1_000) is ResetReason.BEYOND_LOG_END


@dataclass
class FakeConsumer:
    """What LogEndWatch uses of a consumer; ``identity`` is what the cluster reports
    (None: the request fails)."""

    highwaters: dict[Any, int] = field(default_factory=dict)
    identity: LogIdentity | None = None
    sought: list[Any] = field(default_factory=list)

    def assignment(self) -> set[Any]:
        return set(self.highwaters)

    def highwater(self, tp: Any) -> int | None:
        return self.highwaters.get(tp)

    async def seek_to_beginning(self, tp: Any) -> None:
        self.sought.append(tp)


def _watch(consumer: FakeConsumer, now: list[int]) -> tuple[LogEndWatch, CollectorRegistry]:
    registry = CollectorRegistry()
    watch = LogEndWatch(offset_resets(registry), "test", clock_ms=lambda: now[0])

    async def identities(_consumer: Any, topics: list[str]) -> dict[str, LogIdentity]:
        return {} if consumer.identity is None else dict.fromkeys(topics, consumer.identity)

    watch._identities = identities  # type: ignore[method-assign,assignment]
    return watch, registry


def _resets(registry: CollectorRegistry, reason: str) -> float:
    labels = {"topic": "t", "reason": reason}
    return registry.get_sample_value("slawatch_offset_resets_total", labels) or 0.0


async def test_a_new_cluster_identity_resets_at_once() -> None:
    tp = TP("t", 0)
    consumer = FakeConsumer({tp: 20}, LogIdentity("cluster-a", "topic-1"))
    now = [0]
    watch, registry = _watch(consumer, now)
    watch.advance({tp: [Record(19)]})
    assert await watch.check(consumer) == []  # all well: the baseline is taken
    consumer.identity = LogIdentity("cluster-b", "topic-1")  # restarted empty
    consumer.highwaters[tp] = 2
    assert await watch.check(consumer) == [tp]
    assert consumer.sought == [tp]
    assert _resets(registry, "other_log") == 1


async def test_the_same_identity_waits_out_a_lagging_watermark() -> None:
    tp = TP("t", 0)
    consumer = FakeConsumer({tp: 20}, LogIdentity("cluster-a", "topic-1"))
    now = [0]
    watch, registry = _watch(consumer, now)
    watch.advance({tp: [Record(19)]})
    await watch.check(consumer)
    consumer.highwaters[tp] = 15  # Apache Kafka restarted: the watermark lags
    assert await watch.check(consumer) == []
    now[0] += SHORT_LOG_GRACE_MS - 1
    assert await watch.check(consumer) == []
    consumer.highwaters[tp] = 25  # followers caught up
    now[0] += 10
    assert await watch.check(consumer) == []
    assert consumer.sought == []
    assert _resets(registry, "beyond_log_end") == 0


async def test_an_unknown_identity_falls_back_to_the_grace() -> None:
    tp = TP("t", 0)
    consumer = FakeConsumer({tp: 2}, identity=None)
    now = [0]
    watch, registry = _watch(consumer, now)
    watch.advance({tp: [Record(19)]})
    assert await watch.check(consumer) == []
    now[0] += SHORT_LOG_GRACE_MS
    assert await watch.check(consumer) == [tp]
    assert _resets(registry, "beyond_log_end") == 1
