"""What slawatch takes from the broker it runs on, checked on both test brokers:
replication and ``min.insync.replicas`` of its topics, the idempotent producer
(detected: on on Apache Kafka, off on the embedded broker), and on Apache Kafka the
cluster handle the chaos suite uses (kill the leader, a new one takes over, restart).
"""

from __future__ import annotations

import pytest
from aiokafka import TopicPartition
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

from shared import kafka
from shared.errors import ConfigError
from shared.settings import Settings
from shared.topics import Topics, topic_partitions
from tests.infra.broker import TestBroker

pytestmark = pytest.mark.integration


async def test_topics_replicated_as_configured(settings: Settings, broker: TestBroker) -> None:
    admin = kafka.admin_client(settings)
    await admin.start()
    try:
        described = await admin.describe_topics(list(topic_partitions(settings)))
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name) for name in topic_partitions(settings)]
        )
    finally:
        await admin.close()
    replicas = {t["topic"]: {len(p["replicas"]) for p in t["partitions"]} for t in described}
    assert replicas == {name: {broker.replication_factor} for name in topic_partitions(settings)}
    if not broker.apache_kafka:
        return  # the embedded broker's DescribeConfigs says nothing useful at RF 1
    min_isr = {
        resource[3]: value
        for response in configs
        for resource in response.resources
        for value in [next(c[1] for c in resource[4] if c[0] == "min.insync.replicas")]
    }
    assert min_isr == {name: "2" for name in topic_partitions(settings)}


async def test_idempotent_producer_where_the_broker_has_it(
    settings: Settings, broker: TestBroker
) -> None:
    topic = Topics.from_settings(settings).events
    started = await kafka.start_producer(settings)
    try:
        assert kafka.is_idempotent(started) is broker.apache_kafka
        sent = await started.send_and_wait(topic, b"x", key=b"k")
    finally:
        await started.stop()
    # the same either way: produced and readable
    consumer = kafka.consumer(settings, group_id=None)
    consumer.assign([TopicPartition(topic, sent.partition)])
    await consumer.start()
    try:
        batch = await consumer.getmany(timeout_ms=10_000)
    finally:
        await consumer.stop()
    assert [r.value for records in batch.values() for r in records] == [b"x"]


async def test_idempotence_off_and_on(settings: Settings, broker: TestBroker) -> None:
    off = await kafka.start_producer(settings.model_copy(update={"kafka_idempotence": "off"}))
    await off.stop()
    assert not kafka.is_idempotent(off)
    on = settings.model_copy(update={"kafka_idempotence": "on"})
    if broker.apache_kafka:
        started = await kafka.start_producer(on)
        await started.stop()
        assert kafka.is_idempotent(started)
    elif broker.kind == "embedded":
        with pytest.raises(ConfigError, match="refuses it"):
            await kafka.start_producer(on)


async def test_killed_leader_is_replaced_and_rejoins(
    settings: Settings, broker: TestBroker
) -> None:
    if broker.cluster is None:
        pytest.skip(
            "needs the Apache Kafka cluster this session started (SLAWATCH_TEST_BROKER=kafka)"
        )
    cluster = broker.cluster
    topic = Topics.from_settings(settings).events
    leader = await cluster.leader_of(topic, 0)
    assert leader in cluster.node_ids
    cluster.kill(leader)
    try:
        assert not cluster.running(leader)
        successor = await cluster.wait_leader(topic, 0, not_node=leader)
        assert successor != leader
        # acks=all still lands with 2 of 3 in sync (min.insync.replicas=2)
        started = await kafka.start_producer(settings)
        try:
            await started.send_and_wait(topic, b"while one broker is down", partition=0)
        finally:
            await started.stop()
    finally:
        cluster.start(leader)
        await cluster.wait_ready()
    assert leader in await cluster.brokers()
