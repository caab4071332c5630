"""A real Apache Kafka cluster for tests: 3 KRaft nodes on loopback, each broker + controller.

The broker (``org.apache.kafka:kafka_2.13``) and its runtime dependencies come from
Maven Central through the machine's ``mvn``, once, into a cache outside the repo:
``$SLAWATCH_KAFKA_CACHE/kafka-<version>/libs`` (default root ``~/.cache/slawatch``).
A stamp file marks a complete download; a file lock makes concurrent sessions wait for
one download instead of racing. ``SLAWATCH_KAFKA_VERSION`` picks another version.

Usage (the ``infra`` fixture does this when ``SLAWATCH_TEST_BROKER=kafka``)::

    reason = missing_tools()            # "java is not installed", ... or None
    with kafka_cluster(tmp_dir) as cluster:
        cluster.bootstrap               # "127.0.0.1:p1,127.0.0.1:p2,127.0.0.1:p3"
        cluster.cluster_id              # the KRaft cluster id it was formatted with

Cluster handle API (for the chaos suite; node ids are 1, 2, 3):

- ``cluster.node_ids`` / ``cluster.nodes[node_id]`` (ports, config, ``log_path``).
- ``cluster.kill(node_id)``: SIGKILL, returns once the process is gone.
- ``cluster.stop(node_id, grace_s=30)``: SIGTERM (controlled shutdown), then SIGKILL.
- ``cluster.start(node_id)``: starts a stopped or killed node again on the same ports
  and data; returns at once (``await cluster.wait_ready()`` to wait until it is back).
- ``cluster.running(node_id)``.
- ``await cluster.wait_ready(timeout_s=60)``: until every running node is a registered
  broker (admin ``describe_cluster``) and the controller quorum answers.
- ``await cluster.leader_of(topic, partition)``: the partition leader's node id
  (-1 while it has none); ``await cluster.isr_of(topic, partition)``.
- ``await cluster.wait_leader(topic, partition, not_node=None, timeout_s=60)``: until
  the partition has a leader (other than ``not_node``), e.g. after killing the leader.
- ``cluster.close()``: stops every node (also done by the context manager).

Call ``start``/``kill``/``stop`` from the main thread: nodes are started with
``PR_SET_PDEATHSIG``, which fires when the *thread* that spawned them ends, so a node
started from a short-lived thread would be stopped with it. Each node logs (log4j2,
WARN and up, plus server start/stop lines) to ``<cluster dir>/node-<id>.log``.

Tuned for 2 shared cores: 2 network and 2 I/O threads, a 512 MiB heap, the serial
GC, few internal-topic partitions, no initial rebalance delay, and short broker
session timeouts so a killed leader is replaced in seconds.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import fcntl
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from aiokafka.admin import AIOKafkaAdminClient

from shared.embedded import ChildProcess, port_open, spawn
from shared.errors import InfrastructureError

log = logging.getLogger(__name__)

DEFAULT_VERSION = "4.4.0"
#: Tried in order when the default does not resolve (only without SLAWATCH_KAFKA_VERSION).
FALLBACK_VERSIONS = ("4.3.1",)
#: Kafka 4.x logs through slf4j 1.7; this binding sends it to log4j2 (both on Kafka's own
#: classpath) so the nodes obey our log4j2 configuration instead of printing everything.
LOG_BINDING = ("org.apache.logging.log4j", "log4j-slf4j-impl", "2.25.5")
MIN_JAVA = 17
NODE_IDS = (1, 2, 3)
HOST = "127.0.0.1"
HEAP = "512m"

_POM = """<project xmlns="http://maven.apache.org/POM/4.0.0">
  <modelVersion>4.0.0</modelVersion>
  <groupId>local.slawatch</groupId>
  <artifactId>kafka-broker-fetch</artifactId>
  <version>1</version>
  <packaging>pom</packaging>
  <dependencies>
    <dependency>
      <groupId>org.apache.kafka</groupId>
      <artifactId>kafka_2.13</artifactId>
      <version>{version}</version>
    </dependency>
    <dependency>
      <groupId>{log_group}</groupId>
      <artifactId>{log_artifact}</artifactId>
      <version>{log_version}</version>
    </dependency>
  </dependencies>
</project>
"""

_LOG4J2 = """status = warn
appender.out.type = Console
appender.out.name = out
appender.out.layout.type = PatternLayout
appender.out.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = warn
rootLogger.appenderRef.out.ref = out
# one line each when a node has started or shuts down
logger.server.name = kafka.server.KafkaRaftServer
logger.server.level = info
logger.broker.name = kafka.server.BrokerServer
logger.broker.level = info
"""


# -- what is needed ----------------------------------------------------------------------


def java_major(java: str = "java") -> int | None:
    """The major version of ``java``, None if it cannot be run."""
    try:
        out = subprocess.run(
            [java, "-version"], capture_output=True, text=True, timeout=30, check=False
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r'version "(\d+)(?:\.(\d+))?', out.stderr + out.stdout)
    if not found:
        return None
    major = int(found.group(1))
    return int(found.group(2) or 0) if major == 1 else major


def cache_root() -> Path:
    configured = os.environ.get("SLAWATCH_KAFKA_CACHE")
    return Path(configured) if configured else Path.home() / ".cache" / "slawatch"


def _versions() -> tuple[str, ...]:
    pinned = os.environ.get("SLAWATCH_KAFKA_VERSION")
    return (pinned,) if pinned else (DEFAULT_VERSION, *FALLBACK_VERSIONS)


def _stamp(version: str) -> Path:
    return cache_root() / f"kafka-{version}" / ".complete"


def missing_tools() -> str | None:
    """Why the Apache Kafka cluster cannot run here (a skip reason), or None."""
    if shutil.which("java") is None:
        return "java is not installed (Apache Kafka needs Java 17+)"
    major = java_major()
    if major is None or major < MIN_JAVA:
        return f"java {major} found; Apache Kafka 4 needs Java {MIN_JAVA}+"
    cached = any(_stamp(v).exists() for v in _versions())
    if not cached and shutil.which("mvn") is None:
        return "mvn is not installed (needed once to fetch Apache Kafka from Maven Central)"
    return None


# -- fetching ----------------------------------------------------------------------------


def _fetch_version(version: str) -> Path:
    home = cache_root() / f"kafka-{version}"
    libs = home / "libs"
    if _stamp(version).exists():
        return libs
    home.mkdir(parents=True, exist_ok=True)
    with (home.parent / f"kafka-{version}.lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # another session may be fetching: wait for it
        if _stamp(version).exists():
            return libs
        with tempfile.TemporaryDirectory(dir=home) as work:
            pom = Path(work) / "pom.xml"
            group, artifact, log_version = LOG_BINDING
            pom.write_text(
                _POM.format(
                    version=version,
                    log_group=group,
                    log_artifact=artifact,
                    log_version=log_version,
                )
            )
            out = Path(work) / "libs"
            started = time.monotonic()
            done = subprocess.run(
                [
                    "mvn",
                    "-q",
                    "-B",
                    "-f",
                    str(pom),
                    "dependency:copy-dependencies",
                    "-DincludeScope=runtime",
                    f"-DoutputDirectory={out}",
                ],
                capture_output=True,
                text=True,
                timeout=900,
                check=False,
            )
            if done.returncode != 0 or not any(out.glob(f"kafka_2.13-{version}.jar")):
                tail = (done.stdout + done.stderr)[-2_000:]
                raise InfrastructureError(f"mvn could not fetch Apache Kafka {version}: {tail}")
            if libs.exists():  # a half-finished earlier attempt without its stamp
                shutil.rmtree(libs)
            out.rename(libs)
        _stamp(version).write_text(f"{version}\n")
        log.info("fetched Apache Kafka %s in %.1f s", version, time.monotonic() - started)
    return libs


def fetch_kafka() -> tuple[str, Path]:
    """(version, libs dir) of a complete download, fetching it on first use."""
    errors: list[str] = []
    for version in _versions():
        try:
            return version, _fetch_version(version)
        except InfrastructureError as error:
            errors.append(str(error))
    raise InfrastructureError("; ".join(errors))


# -- the cluster -------------------------------------------------------------------------


def _free_ports(count: int) -> list[int]:
    """Distinct free ports (all bound at once, so none is handed out twice)."""
    with contextlib.ExitStack() as stack:
        socks = [stack.enter_context(socket.socket()) for _ in range(count)]
        for sock in socks:
            sock.bind((HOST, 0))
        return [int(s.getsockname()[1]) for s in socks]


def _cluster_id() -> str:
    """A KRaft cluster id: 16 random bytes, URL-safe base64 without padding."""
    return base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode()


@dataclass
class KafkaNode:
    """One combined broker + controller and its process (None while not running)."""

    node_id: int
    broker_port: int
    controller_port: int
    config_path: Path
    log_path: Path
    process: ChildProcess | None = None

    def running(self) -> bool:
        return self.process is not None and self.process.running()


def node_properties(
    node_id: int, broker_port: int, controller_port: int, voters: str, data_dir: Path
) -> str:
    settings = {
        "process.roles": "broker,controller",
        "node.id": node_id,
        "controller.quorum.voters": voters,
        "listeners": f"PLAINTEXT://{HOST}:{broker_port},CONTROLLER://{HOST}:{controller_port}",
        "advertised.listeners": f"PLAINTEXT://{HOST}:{broker_port}",
        "controller.listener.names": "CONTROLLER",
        "inter.broker.listener.name": "PLAINTEXT",
        "listener.security.protocol.map": "PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT",
        "log.dirs": data_dir,
        # 2 shared cores
        "num.network.threads": 2,
        "num.io.threads": 2,
        "num.replica.fetchers": 1,
        "background.threads": 2,
        "num.recovery.threads.per.data.dir": 1,
        # durability as slawatch's users deploy it; min.insync.replicas=2 is set per topic
        # by slawatch (shared.topics): as a broker default it would refuse acks=all
        # writes to the RF 1 topics some tests create
        "default.replication.factor": 3,
        "offsets.topic.replication.factor": 3,
        "transaction.state.log.replication.factor": 3,
        "transaction.state.log.min.isr": 2,
        "share.coordinator.state.topic.replication.factor": 3,
        "share.coordinator.state.topic.min.isr": 2,
        "auto.create.topics.enable": "false",
        "unclean.leader.election.enable": "false",
        # fewer internal partitions: the first group join creates them all
        "offsets.topic.num.partitions": 6,
        "transaction.state.log.num.partitions": 3,
        "share.coordinator.state.topic.num.partitions": 3,
        "num.partitions": 1,
        # tests: groups form at once; a dead node is fenced and replaced in seconds
        "group.initial.rebalance.delay.ms": 0,
        # tests use consumer session timeouts of 2-6 s (Apache Kafka's minimum is 6 s)
        "group.min.session.timeout.ms": 1_000,
        "broker.heartbeat.interval.ms": 500,
        "broker.session.timeout.ms": 4_000,
        "replica.lag.time.max.ms": 10_000,
        "controlled.shutdown.enable": "true",
        "log.segment.bytes": 16 * 1024 * 1024,
    }
    return "".join(f"{key}={value}\n" for key, value in settings.items())


@dataclass
class KafkaCluster:
    """A formatted 3-node KRaft cluster; see the module docstring for its API."""

    directory: Path
    libs: Path
    version: str
    cluster_id: str
    nodes: dict[int, KafkaNode] = field(default_factory=dict)

    @property
    def node_ids(self) -> list[int]:
        return sorted(self.nodes)

    @property
    def bootstrap(self) -> str:
        return ",".join(f"{HOST}:{n.broker_port}" for n in self.nodes.values())

    def _java(self, main: str, *args: str) -> list[str]:
        return [
            "java",
            f"-Xmx{HEAP}",
            "-Xms64m",
            "-Xss512k",
            "-XX:+UseSerialGC",
            "-XX:TieredStopAtLevel=1",  # C1 only: starts faster; tests load it lightly
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={self.directory / 'log4j2.properties'}",
            "-cp",
            f"{self.libs}/*",
            main,
            *args,
        ]

    def format(self) -> None:
        """Format every node's storage (in parallel: each is a JVM start)."""
        running = [
            subprocess.Popen(
                self._java(
                    "kafka.tools.StorageTool",
                    "format",
                    "--config",
                    str(node.config_path),
                    "--cluster-id",
                    self.cluster_id,
                ),
                stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT,
                text=True,
            )
            for node in self.nodes.values()
        ]
        for node, process in zip(self.nodes.values(), running, strict=True):
            output, _ = process.communicate(timeout=120)
            if process.returncode != 0:
                raise InfrastructureError(f"formatting node {node.node_id} failed: {output}")

    def start(self, node_id: int) -> None:
        node = self.nodes[node_id]
        if node.running():
            return
        node.process = spawn(
            f"kafka-{node_id}",
            self._java("kafka.Kafka", str(node.config_path)),
            log_file=node.log_path,
        )

    def kill(self, node_id: int) -> None:
        """SIGKILL: no controlled shutdown, like a machine that dies."""
        node = self.nodes[node_id]
        if node.process is not None and node.process.running():
            node.process.process.kill()
            node.process.process.wait()

    def stop(self, node_id: int, grace_s: float = 30.0) -> None:
        """SIGTERM (controlled shutdown: leadership moves first), SIGKILL after grace."""
        node = self.nodes[node_id]
        if node.process is not None:
            node.process.stop(grace_s)

    def running(self, node_id: int) -> bool:
        return self.nodes[node_id].running()

    def close(self) -> None:
        # brokers first, all at once: a node alone without quorum waits long to shut down
        for node in self.nodes.values():
            if node.process is not None and node.process.running():
                node.process.process.send_signal(signal.SIGTERM)
        for node_id in self.node_ids:
            self.stop(node_id, grace_s=15)

    def _check_alive(self) -> None:
        for node in self.nodes.values():
            if node.process is not None and not node.process.running():
                code = node.process.process.returncode
                tail = node.log_path.read_text(errors="replace")[-3_000:]
                raise InfrastructureError(f"kafka node {node.node_id} exited with {code}: {tail}")

    async def _admin(self) -> AIOKafkaAdminClient:
        running = [n for n in self.nodes.values() if n.running()]
        admin = AIOKafkaAdminClient(
            bootstrap_servers=",".join(f"{HOST}:{n.broker_port}" for n in running),
            request_timeout_ms=5_000,
        )
        await admin.start()
        return admin

    async def brokers(self) -> set[int]:
        """Node ids of the brokers the cluster metadata lists (registered, not fenced)."""
        admin = await self._admin()
        try:
            described = await admin.describe_cluster()
        finally:
            await admin.close()
        return {int(b["node_id"]) for b in described["brokers"]}

    async def wait_ready(self, timeout_s: float = 60.0) -> None:
        """Until every running node is a registered broker."""
        wanted = {n.node_id for n in self.nodes.values() if n.running()}
        deadline = time.monotonic() + timeout_s
        last: object = None
        while True:
            self._check_alive()
            try:
                if not all(port_open(HOST, self.nodes[n].broker_port) for n in wanted):
                    raise InfrastructureError("a broker port is not open yet")
                if wanted <= await self.brokers():
                    return
                last = "not every broker registered yet"
            except Exception as error:  # not up yet: asked again until the deadline
                last = error
            if time.monotonic() > deadline:
                raise InfrastructureError(
                    f"kafka cluster not ready in {timeout_s:.0f} s (nodes {sorted(wanted)}): {last}"
                )
            await asyncio.sleep(0.25)

    async def _partition(self, topic: str, partition: int) -> dict[str, object]:
        admin = await self._admin()
        try:
            described = await admin.describe_topics([topic])
        finally:
            await admin.close()
        for entry in described[0]["partitions"]:
            if entry["partition"] == partition:
                return dict(entry)
        raise InfrastructureError(f"{topic} has no partition {partition}")

    async def leader_of(self, topic: str, partition: int) -> int:
        """The node id leading ``topic``/``partition`` (-1 while it has no leader)."""
        return int(str((await self._partition(topic, partition))["leader"]))

    async def isr_of(self, topic: str, partition: int) -> list[int]:
        isr = (await self._partition(topic, partition))["isr"]
        assert isinstance(isr, list)
        return [int(n) for n in isr]

    async def wait_leader(
        self, topic: str, partition: int, not_node: int | None = None, timeout_s: float = 60.0
    ) -> int:
        """Until the partition has a leader other than ``not_node``; returns it."""
        deadline = time.monotonic() + timeout_s
        while True:
            try:
                leader = await self.leader_of(topic, partition)
                if leader >= 0 and leader != not_node:
                    return leader
            except Exception:  # metadata moving after a kill: asked again until the deadline
                pass
            if time.monotonic() > deadline:
                raise InfrastructureError(f"{topic}/{partition}: no new leader in {timeout_s} s")
            await asyncio.sleep(0.25)


def new_cluster(directory: Path) -> KafkaCluster:
    """Fetch (once), write configs and format storage; no node is started yet."""
    version, libs = fetch_kafka()
    directory.mkdir(parents=True, exist_ok=True)
    (directory / "log4j2.properties").write_text(_LOG4J2)
    ports = _free_ports(2 * len(NODE_IDS))
    broker_ports = dict(zip(NODE_IDS, ports[: len(NODE_IDS)], strict=True))
    controller_ports = dict(zip(NODE_IDS, ports[len(NODE_IDS) :], strict=True))
    voters = ",".join(f"{n}@{HOST}:{controller_ports[n]}" for n in NODE_IDS)
    cluster = KafkaCluster(directory, libs, version, _cluster_id())
    for n in NODE_IDS:
        config = directory / f"node-{n}.properties"
        config.write_text(
            node_properties(
                n, broker_ports[n], controller_ports[n], voters, directory / f"data-{n}"
            )
        )
        cluster.nodes[n] = KafkaNode(
            n, broker_ports[n], controller_ports[n], config, directory / f"node-{n}.log"
        )
    cluster.format()
    return cluster


@contextlib.contextmanager
def kafka_cluster(directory: Path, timeout_s: float = 90.0) -> Iterator[KafkaCluster]:
    """A started, ready cluster in ``directory``; every node stopped on exit."""
    cluster = new_cluster(directory)
    try:
        for node_id in cluster.node_ids:
            cluster.start(node_id)
        asyncio.run(cluster.wait_ready(timeout_s))
        yield cluster
    finally:
        cluster.close()
