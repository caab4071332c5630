"""Fixtures: a real broker and a real PostgreSQL for the whole session.

Embedded ones are started unless these point at external servers:
  SLAWATCH_TEST_KAFKA_BOOTSTRAP   e.g. 127.0.0.1:9092
  SLAWATCH_TEST_DATABASE_URL      a server URL; the suite creates and drops its own database
SLAWATCH_TEST_BROKER=kafka starts a 3-node Apache Kafka cluster instead of the embedded
broker (``make test-kafka``; see tests/infra/broker.py and the ``broker`` fixture).
Each test gets its own topic prefix and empty tables.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from shared import db
from shared.definitions.kinds.receivers import ReceiverRules, use_rules
from shared.embedded import EmbeddedInfra, embedded_infra
from shared.outbound import LOOPBACK
from shared.settings import Settings
from shared.topics import ensure_topics
from tests.infra.broker import TestBroker, session_broker

# The suite delivers to receivers on this machine, and slawatch denies loopback unless
# allowed (shared.outbound): the suite allows it as an operator would, for the settings
# it builds, the commands it runs in process and the receivers it writes directly.
os.environ.setdefault("SLAWATCH_OUTBOUND_ALLOW", "127.0.0.1/32, ::1/128")
use_rules(ReceiverRules(allow=LOOPBACK))


@pytest.fixture(scope="session")
def broker(tmp_path_factory: pytest.TempPathFactory) -> Iterator[TestBroker]:
    """The session's broker: embedded, or Apache Kafka with SLAWATCH_TEST_BROKER=kafka."""
    with session_broker(tmp_path_factory.mktemp("broker")) as started:
        yield started


@pytest.fixture(scope="session")
def infra(tmp_path_factory: pytest.TempPathFactory, broker: TestBroker) -> Iterator[EmbeddedInfra]:
    postgres = os.environ.get("SLAWATCH_TEST_DATABASE_URL")
    with embedded_infra(
        need_kafka=False,
        need_postgres=not postgres,
        data_dir=tmp_path_factory.mktemp("infra"),
        kafka_port=0,
        postgres_port=0,
    ) as started:
        started.kafka_bootstrap = broker.bootstrap
        server_url = postgres or started.database_url
        assert server_url is not None
        name = f"slawatch_test_{uuid.uuid4().hex[:10]}"
        asyncio.run(_admin(server_url, f'CREATE DATABASE "{name}"'))
        started.database_url = server_url.rsplit("/", 1)[0] + "/" + name
        db.migrate_sync(started.database_url)
        try:
            yield started
        finally:
            asyncio.run(_admin(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _admin(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url.replace("postgresql+asyncpg://", "postgresql://"))
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


@pytest.fixture
def make_settings(infra: EmbeddedInfra, broker: TestBroker, tmp_path: Path):  # type: ignore[no-untyped-def]
    """Settings on the session's broker and database, with a topic prefix of this test."""
    prefix = f"t{uuid.uuid4().hex[:8]}"

    def build(**overrides: object) -> Settings:
        values: dict[str, object] = {
            "kafka_bootstrap": infra.kafka_bootstrap,
            "database_url": infra.database_url,
            "topic_prefix": prefix,
            "data_dir": tmp_path,
            "kafka_session_timeout_ms": 6_000,
            "kafka_heartbeat_interval_ms": 500,
            "events_partitions": 2,
            "raw_events_partitions": 2,
            "topic_replication_factor": broker.replication_factor,
        }
        values.update(overrides)
        return Settings(**values)  # type: ignore[arg-type]

    return build


@pytest.fixture
async def settings(make_settings) -> Settings:  # type: ignore[no-untyped-def]
    """Default test settings, topics created, every table emptied."""
    built: Settings = make_settings()
    await ensure_topics(built)
    await _admin(
        built.database_url or "",
        """DO $$ DECLARE names text; BEGIN
             SELECT string_agg(quote_ident(tablename), ', ') INTO names FROM pg_tables
              WHERE schemaname = 'public' AND tablename <> 'alembic_version';
             IF names IS NOT NULL THEN EXECUTE 'TRUNCATE ' || names || ' CASCADE'; END IF;
           END $$""",
    )
    return built


@pytest.fixture
async def engine(settings: Settings) -> AsyncIterator[AsyncEngine]:
    created = db.engine(settings)
    try:
        yield created
    finally:
        await created.dispose()
