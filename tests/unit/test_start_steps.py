"""What `slawatch up` tells a person while it starts: each step with the seconds since
the start, and which broker and database it uses (embedded or yours)."""

from __future__ import annotations

from services.stack import StartSteps, infrastructure_line
from shared.settings import Settings


def test_each_step_carries_the_seconds_since_the_start() -> None:
    lines: list[str] = []
    now = iter([100.0, 102.25, 117.5])
    steps = StartSteps(lines.append, clock=lambda: next(now))
    steps.done("broker ready")
    steps.done("ingest, evaluator, notifier ready")
    assert lines == [
        "slawatch: [  2.2 s] broker ready",
        "slawatch: [ 17.5 s] ingest, evaluator, notifier ready",
    ]


def test_the_line_says_what_was_started_and_what_was_given() -> None:
    embedded = Settings(kafka_bootstrap=None, database_url=None)
    effective = embedded.model_copy(
        update={
            "kafka_bootstrap": "127.0.0.1:19092",
            "database_url": "postgresql+asyncpg://postgres:pw@127.0.0.1:15432/postgres",
        }
    )
    line = infrastructure_line(embedded, effective)
    assert line == (
        "embedded broker at 127.0.0.1:19092, embedded PostgreSQL at 127.0.0.1:15432 ready"
    )
    assert "pw" not in line
    given = Settings(kafka_bootstrap="k:9092", database_url="postgresql://u@db/x")
    assert infrastructure_line(given, given) == (
        "your broker at k:9092, your PostgreSQL at db:5432 ready"
    )
