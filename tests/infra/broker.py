"""The test session's broker: one fixture, two implementations.

``SLAWATCH_TEST_BROKER`` chooses it:

- ``embedded`` (default): the Tansu broker (memory only, RF 1; see EMBEDDED_BROKER.md).
- ``kafka``: a 3-node Apache Kafka KRaft cluster (``tests.infra.apache_kafka``), RF 3,
  ``min.insync.replicas=2``; skipped with the reason where Java or Maven is missing.

``SLAWATCH_TEST_KAFKA_BOOTSTRAP`` points the suite at an external broker instead: it
is taken as Apache Kafka (RF 3) with ``SLAWATCH_TEST_BROKER=kafka``, else as a broker
of unknown kind, handled like the embedded one (RF 1, no exact offsets).

Tests ask the ``broker`` fixture what they run on: ``broker.kind``,
``broker.bootstrap``, ``broker.exact_offsets``, ``broker.replication_factor`` and,
for the cluster this session started, ``broker.cluster`` (kill / start / leader_of).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import pytest

from shared.embedded import embedded_infra
from tests.infra.apache_kafka import KafkaCluster, kafka_cluster, missing_tools

BrokerKind = Literal["embedded", "kafka", "external"]


@dataclass(frozen=True)
class TestBroker:
    """What the session's tests produce to and consume from."""

    __test__ = False  # a fixture value, not a test class

    kind: BrokerKind
    bootstrap: str
    cluster: KafkaCluster | None = None

    @property
    def apache_kafka(self) -> bool:
        return self.kind == "kafka"

    @property
    def exact_offsets(self) -> bool:
        """End offsets, high watermarks and lag are exact (not on the embedded broker)."""
        return self.apache_kafka

    @property
    def replication_factor(self) -> int:
        return 3 if self.apache_kafka else 1


def broker_kind() -> str:
    return os.environ.get("SLAWATCH_TEST_BROKER", "embedded")


@contextlib.contextmanager
def session_broker(directory: Path) -> Iterator[TestBroker]:
    """Start (or point at) the broker ``SLAWATCH_TEST_BROKER`` asks for."""
    kind = broker_kind()
    if kind not in ("embedded", "kafka"):
        raise pytest.UsageError(f"SLAWATCH_TEST_BROKER={kind!r}: use 'embedded' or 'kafka'")
    external = os.environ.get("SLAWATCH_TEST_KAFKA_BOOTSTRAP")
    if external:
        yield TestBroker("kafka" if kind == "kafka" else "external", external)
    elif kind == "kafka":
        reason = missing_tools()
        if reason:
            pytest.skip(f"Apache Kafka cluster: {reason}")
        with kafka_cluster(directory / "kafka") as cluster:
            yield TestBroker("kafka", cluster.bootstrap, cluster)
    else:
        with embedded_infra(
            need_kafka=True,
            need_postgres=False,
            data_dir=directory,
            kafka_port=0,
            postgres_port=0,
        ) as started:
            assert started.kafka_bootstrap is not None
            yield TestBroker("embedded", started.kafka_bootstrap)
