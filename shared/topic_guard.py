"""The topic guard: slawatch's topics exist, with their configured partition counts.

Every service runs one as a supervised background task. Every ``interval_s`` it
describes the cluster (admin metadata of all topics, which never creates one, and
the cluster id) and compares with ``shared.topics.topic_partitions`` (:func:`assess`,
pure). When topics are missing (the embedded broker restarted empty) it logs a
warning and recreates them with ``ensure_topics``; a topic with another partition
count cannot be repaired here (the embedded broker cannot add partitions, and no
broker can remove them): it is logged as an error and stays not ready.

Meanwhile readiness says so (``broker`` and ``topics`` checks, answered from the
last result), and :meth:`TopicGuard.refusal` tells a producer not to publish into
such a topic (ingest answers 503 with Retry-After). Timeline of a broker restart:

    t0      broker back, empty          producers' cached metadata still lists topics
    t0..t1  a send is refused by the broker (unknown topic) and retried by aiokafka;
            its metadata refresh cannot create the topic (shared.kafka_metadata)
    t1      guard: "topics missing"     readiness 503, ingest answers 503 at once
    t1+ε    guard: topics created       readiness 200, sends succeed

The guard also reports the broker's cluster id (``cluster_id``) and calls
``on_cluster_change(old, new)`` when it changes, i.e. the broker holds a new log
(also once at the first sighting, with ``old`` None).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared import kafka
from shared.readiness import NOT_PROBED, CheckResult
from shared.reconnect import Outage, describe
from shared.settings import Settings
from shared.topics import ensure_topics, topic_partitions

log = logging.getLogger(__name__)

GUARD_INTERVAL_S = 1.0
GUARD_TIMEOUT_S = 3.0

OnClusterChange = Callable[[str | None, str], Awaitable[None] | None]


@dataclass(frozen=True)
class Assessment:
    """How the broker's topics compare with the configuration."""

    missing: tuple[str, ...] = ()
    #: (topic, partitions on the broker, configured)
    wrong: tuple[tuple[str, int, int], ...] = ()

    @property
    def ok(self) -> bool:
        return not self.missing and not self.wrong

    def reason(self) -> str | None:
        parts = []
        if self.missing:
            parts.append(f"topics missing: {', '.join(self.missing)}")
        parts.extend(
            f"topic {t} has {have} partitions, configured {want}" for t, have, want in self.wrong
        )
        return "; ".join(parts) or None


def assess(wanted: Mapping[str, int], present: Mapping[str, int]) -> Assessment:
    """Compare configured partition counts with the broker's (pure)."""
    missing = tuple(sorted(name for name in wanted if name not in present))
    wrong = tuple(
        (name, present[name], count)
        for name, count in sorted(wanted.items())
        if name in present and present[name] != count
    )
    return Assessment(missing, wrong)


def partition_counts(described: list[dict[str, Any]]) -> dict[str, int]:
    """Topic → partition count from admin ``describe_topics`` (errored topics left out)."""
    return {
        str(t["topic"]): len(t["partitions"])
        for t in described
        if t.get("error_code", 0) == 0 and t.get("partitions")
    }


class TopicGuard:
    """Keeps the topics there; see the module docstring."""

    def __init__(
        self,
        settings: Settings,
        *,
        interval_s: float = GUARD_INTERVAL_S,
        timeout_s: float = GUARD_TIMEOUT_S,
        on_cluster_change: OnClusterChange | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._settings = settings
        self.wanted = topic_partitions(settings)
        self._interval_s = interval_s
        self._timeout_s = timeout_s
        self._on_cluster_change = on_cluster_change
        self._clock = clock
        self._stale_after_s = 3 * interval_s + timeout_s
        self.cluster_id: str | None = None
        self.assessment: Assessment | None = None
        self._broker = NOT_PROBED
        self._topics = NOT_PROBED
        self._at: float | None = None
        self._admin: Any = None
        self._outage = Outage("broker")
        self._reported_wrong: tuple[tuple[str, int, int], ...] = ()

    # -- what others ask -------------------------------------------------------------

    def refusal(self, topic: str) -> str | None:
        """Why nothing may be produced into ``topic`` now, or None."""
        found = self.assessment
        if found is None:
            return None
        if topic in found.missing:
            return f"topic {topic} is missing on the broker (being recreated); retry"
        for name, have, want in found.wrong:
            if name == topic:
                return f"topic {topic} has {have} partitions, configured {want}"
        return None

    async def broker_check(self) -> CheckResult:
        return self._fresh(self._broker)

    async def topics_check(self) -> CheckResult:
        if not self._broker.ok:
            return self._fresh(CheckResult(False, "broker unreachable"))
        return self._fresh(self._topics)

    def _fresh(self, result: CheckResult) -> CheckResult:
        if self._at is not None and self._clock() - self._at > self._stale_after_s:
            return CheckResult(False, f"topic guard silent for {self._clock() - self._at:.0f} s")
        return result

    # -- the loop --------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Check every ``interval_s`` until ``stop``; failures are reported, not raised."""
        try:
            while not stop.is_set():
                with contextlib.suppress(Exception):  # recorded by check_once
                    await self.check_once()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._interval_s)
        finally:
            await self._close_admin()

    async def check_once(self) -> Assessment:
        """Describe, compare, recreate missing topics; raises when the broker cannot be
        asked or the topics cannot be created (the start-up wait retries it)."""
        try:
            present, cluster_id = await asyncio.wait_for(self._describe(), self._timeout_s)
        except Exception as error:
            self._record_failure(error, "broker unreachable")
            await self._close_admin()
            raise
        self._outage.recovered()
        self._broker = CheckResult(True)
        await self._cluster_seen(cluster_id)
        found = assess(self.wanted, present)
        if found.missing:
            self._note(found)
            log.warning(
                "topics missing on the broker; recreating them",
                extra={"topics": list(found.missing), "cluster_id": cluster_id},
            )
            try:
                await asyncio.wait_for(ensure_topics(self._settings), self._timeout_s)
                present, _ = await asyncio.wait_for(self._describe(), self._timeout_s)
            except Exception as error:
                self._record_failure(error, "topics missing, recreating them failed", topics=True)
                raise
            found = assess(self.wanted, present)
        self._note(found)
        if found.wrong and found.wrong != self._reported_wrong:
            log.error("topics with the wrong partition count: %s", found.reason())
        self._reported_wrong = found.wrong
        return found

    def _note(self, found: Assessment) -> None:
        self.assessment = found
        self._topics = CheckResult(found.ok, found.reason())
        self._at = self._clock()

    def _record_failure(self, error: BaseException, what: str, *, topics: bool = False) -> None:
        self._outage.failed(error)
        result = CheckResult(False, f"{what}: {describe(error) or 'timeout'}")
        if topics:
            self._topics = result
        else:
            self._broker = result
        self._at = self._clock()

    async def _cluster_seen(self, cluster_id: str) -> None:
        old = self.cluster_id
        self.cluster_id = cluster_id
        if old is not None and old != cluster_id:
            log.warning(
                "the broker's cluster id changed: it holds a new log",
                extra={"old": old, "new": cluster_id},
            )
        if old != cluster_id and self._on_cluster_change is not None:
            outcome = self._on_cluster_change(old, cluster_id)
            if outcome is not None:
                await outcome

    async def _describe(self) -> tuple[dict[str, int], str]:
        if self._admin is None:
            admin = kafka.admin_client(self._settings)
            try:
                await admin.start()
            except BaseException:
                with contextlib.suppress(Exception):
                    await admin.close()
                raise
            self._admin = admin
        described = await self._admin.describe_topics()
        cluster = await self._admin.describe_cluster()
        return partition_counts(described), str(cluster.get("cluster_id") or "")

    async def _close_admin(self) -> None:
        admin, self._admin = self._admin, None
        if admin is not None:
            with contextlib.suppress(Exception):
                await asyncio.wait_for(admin.close(), self._timeout_s)
