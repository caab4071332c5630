"""schemathesis against the OpenAPI of the apps that run without a database: ingest's
intake (recording publisher in place of the broker) and the evaluator (a real engine).

Every operation, at most :data:`MAX_EXAMPLES` generated cases each (positive and
negative data), derandomized so a run is repeatable; every schemathesis check: no
server error, status codes, content types, headers and bodies as documented. The
configuration API and the notifier need PostgreSQL: tests/integration/test_openapi_fuzz.py.

With API keys in place the admin key is sent (:func:`_auth`): one place to change.
"""

from __future__ import annotations

import inspect
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from hypothesis.errors import Unsatisfiable
from prometheus_client import CollectorRegistry
from schemathesis.generation.modes import GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from services.evaluator import api as evaluator_api
from services.ingest import api as ingest_api
from services.ingest.metrics import IngestMetrics
from services.ingest.records import OutRecord
from shared.topics import Topics
from tests.unit.evaluator.factories import T0, agreement, engine, event

MAX_EXAMPLES = 30
INTAKE_PATHS = {"/v1/events", "/v1/integrations/alertmanager", "/v1/integrations/grafana"}
NOW = 1_800_000_000_000
FUZZ = settings(
    max_examples=MAX_EXAMPLES,
    derandomize=True,
    deadline=None,
    database=None,
    suppress_health_check=list(HealthCheck),
)


class Recorder:
    """The broker's place: acknowledges every record."""

    async def send_all(self, records: Sequence[OutRecord]) -> list[str | None]:
        return [None] * len(records)

    async def ready(self) -> bool:
        return True


async def _ready() -> bool:
    return True


def _auth(factory: Any) -> tuple[dict[str, Any], dict[str, str]]:
    """Extra ``create_app`` arguments and request headers: the admin key once the app
    takes one."""
    if "auth" in inspect.signature(factory).parameters:
        from tests.keys import ADMIN_KEY, bearer, static_auth

        return {"auth": static_auth()}, bearer(ADMIN_KEY)
    return {}, {}


def ingest_app() -> tuple[Any, dict[str, str]]:
    registry = CollectorRegistry()
    deps = ingest_api.IngestDeps(
        publisher=Recorder(),
        topics=Topics.from_prefix("fuzz"),
        metrics=IngestMetrics(registry),
        clock=lambda: NOW,  # after the examples' times (2026-11)
        max_body_bytes=256 * 1024,
        max_batch_items=100,
    )
    extra, headers = _auth(ingest_api.create_app)
    return ingest_api.create_app(deps, registry, {"broker": _ready}, **extra), headers


def evaluator_app() -> tuple[Any, dict[str, str]]:
    evaluator = engine(agreement())
    evaluator.assign(0, None)
    evaluator.process(0, event(T0, "bad"))
    extra, headers = _auth(evaluator_api.create_app)
    app = evaluator_api.create_app(evaluator, CollectorRegistry(), {"broker": _ready}, **extra)
    return app, headers


APPS = {"ingest": ingest_app, "evaluator": evaluator_app}


@dataclass
class Tally:
    """What one app's run did, for the report line printed with ``-s``."""

    operations: int = 0
    cases: int = 0
    statuses: Counter[int] = field(default_factory=Counter)


@pytest.mark.parametrize("name", sorted(APPS))
def test_every_operation_answers_as_documented(name: str) -> None:
    app, headers = APPS[name]()
    api = schemathesis.openapi.from_asgi("/openapi.json", app)
    tally = Tally()
    for result in api.get_all_operations():
        operation = result.ok()
        tally.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            # An intake body's validity depends on what no schema states (an event time
            # past now + the future skew, a CloudEvent's data, NDJSON lines in a string):
            # a schema-valid body may be refused with a documented 400/422. Every other
            # check holds, status codes included (each one documented).
            excluded = [positive_data_acceptance] if operation.path in INTAKE_PATHS else []

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case) -> None:
                response = case.call_and_validate(headers=headers, excluded_checks=excluded)  # noqa: B023 - run at once
                tally.cases += 1
                tally.statuses[response.status_code] += 1

            try:
                check()
            except Unsatisfiable:
                # nothing to break: an operation without parameters or body
                assert mode is GenerationMode.NEGATIVE, operation.label
    print(f"{name}: {tally.operations} operations, {tally.cases} cases, {dict(tally.statuses)}")
    assert tally.operations and not any(status >= 500 for status in tally.statuses)
