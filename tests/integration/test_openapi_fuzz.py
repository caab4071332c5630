"""schemathesis against the OpenAPI of the apps that need PostgreSQL: ingest's
configuration API (the ``/v1/...`` definition routes of every kind, schema,
validation, sources) and the notifier's API (breaches, acks and ack links, silences,
receiver attempts, reports), each on the real PostgreSQL of tests/conftest.py with a
few rows seeded so the reads answer with real data. The intake and the evaluator,
which need no database: tests/unit/test_openapi_fuzz.py (same approach).

Every operation, at most :data:`MAX_EXAMPLES` generated cases each (positive and
negative data), derandomized so a run is repeatable; every schemathesis check: no
server error, status codes, content types, headers and bodies as documented. A case
sends the admin key in place of its generated token, except a negative case that
leaves the header out or malforms it (the documented 401 is its answer). The one line
per app printed with ``-s`` gives the figures (operations, cases, statuses).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import schemathesis
from fastapi import FastAPI
from hypothesis import given, settings
from hypothesis.errors import FlakyFailure, Unsatisfiable
from prometheus_client import CollectorRegistry
from schemathesis.checks import CheckFunction
from schemathesis.core.result import Ok
from schemathesis.generation.modes import GenerationMode
from schemathesis.python import asgi as schemathesis_asgi
from schemathesis.specs.openapi.checks import positive_data_acceptance
from sqlalchemy.ext.asyncio import AsyncEngine

from services.ingest.config import config_router
from services.ingest.source_service import SourcesService
from services.notifier import api as notifier_api
from services.notifier.acklink import AckLinks
from services.notifier.intake import record_breach
from shared import db
from shared.settings import Settings
from shared.topics import Topics
from tests.integration.notifier.support import agreement_doc, apply_docs, receiver_doc
from tests.unit import test_openapi_fuzz as unit
from tests.unit.notifier.support import T0, make_breach
from tests.unit.test_openapi_fuzz import NOW, Recorder, Tally, _auth, ingest_app

pytestmark = pytest.mark.integration

MAX_EXAMPLES = 20
FUZZ = settings(unit.FUZZ, max_examples=MAX_EXAMPLES)

#: The unit file fuzzes these (no database): here they are left out.
COVERED = {"/v1/events", "/v1/integrations/alertmanager", "/v1/integrations/grafana"}


async def _ready() -> bool:
    return True


@dataclass
class Built:
    """An app on its own engine, the headers its key needs, what the run skips."""

    app: FastAPI
    headers: dict[str, str]
    engine: AsyncEngine
    #: operations whose documented body cannot say what makes it acceptable
    loose: Callable[[str, str], bool] = lambda _method, _path: False


def config_app(settings: Settings) -> Built:
    # The engine connects lazily: first in schemathesis's event loop, where every
    # request of the run is served (and where :func:`_dispose` closes it).
    engine = db.engine(settings, pool_size=2)
    app, headers = ingest_app()
    sources = SourcesService(
        settings, Recorder(), Topics.from_settings(settings), CollectorRegistry(), lambda: NOW
    )
    app.include_router(sources.router)
    app.include_router(config_router(db.sessions(engine)))
    return Built(app, headers, engine, loose=_config_loose)


def _config_loose(method: str, path: str) -> bool:
    # A document's validity depends on what no schema states (references to other
    # documents, cross-field rules): a schema-valid body may be refused with a
    # documented 422. Every other check holds.
    return method in {"POST", "PUT"}


def notifier_app(settings: Settings) -> Built:
    engine = db.engine(settings, pool_size=2)
    links = AckLinks(b"fuzz-ack-key", "http://notifier")
    life = notifier_api.Lifecycle(lambda: NOW, links)
    extra, headers = _auth(notifier_api.create_app)
    app = notifier_api.create_app(
        db.sessions(engine), CollectorRegistry(), {"database": _ready}, life, **extra
    )
    return Built(app, headers, engine, loose=_notifier_loose)


def _notifier_loose(method: str, path: str) -> bool:
    # What no schema of a parameter or body states: a report's period in words
    # (2026-11, 2026-W48, ...; ``period`` or ``at``, not both), a silence's end after
    # its start and one of ends_at / duration. Refused with a documented 400 / 422.
    return (method, path) in {
        ("GET", "/v1/agreements/{name}/report"),
        ("POST", "/v1/silences"),
    }


@pytest.fixture
async def seeded(engine: AsyncEngine) -> AsyncEngine:
    """A receiver, an agreement, breaches with deliveries: reads find real rows."""
    await apply_docs(
        engine,
        receiver_doc("hook", "http://127.0.0.1:1/hook"),
        agreement_doc([{"receivers": ["hook"]}]),
    )
    async with db.sessions(engine)() as session, session.begin():
        for i in range(3):
            breach = make_breach(id=f"{i:032d}", opened_at=T0 + i, at=T0 + i)
            await record_breach(session, breach, ["hook"], T0)
    return engine


APPS = {"config": config_app, "notifier": notifier_app}


def _dispose(engine: AsyncEngine) -> None:
    """Close the pool in the event loop its connections belong to (schemathesis's)."""

    async def close(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        await engine.dispose()
        await send({"type": "http.response.start", "status": 204, "headers": []})
        await send({"type": "http.response.body", "body": b""})

    with schemathesis_asgi.get_client(close) as client:
        assert client.get("/").status_code == 204


@pytest.fixture
def built(
    request: pytest.FixtureRequest, settings: Settings, seeded: AsyncEngine
) -> Iterator[Built]:
    made: Built = APPS[request.param](settings)
    try:
        yield made
    finally:
        _dispose(made.engine)


def _key_for(case: schemathesis.Case[Any], key: dict[str, str]) -> dict[str, str]:
    """The valid key in place of the generated bearer token; none where the case leaves
    the header out or malforms it (a negative case about the key: 401 expected)."""
    sent = case.headers.get("Authorization") if case.headers else None
    return key if sent is not None and sent.startswith("Bearer ") else {}


def _summary(exc: BaseException) -> str:
    """What failed and the request that showed it, without schemathesis's full dump
    (a generated body can run to pages)."""
    flaky = ""
    while isinstance(exc, FlakyFailure):  # the failure of the first call
        flaky, exc = f"({type(exc).__name__}) ", exc.exceptions[0]
    text = str(exc)
    checks = [line.strip() for line in text.splitlines() if line.strip().startswith("- ")]
    curl = next((line.strip() for line in text.splitlines() if "curl " in line), "")
    answer = next((line.strip() for line in text.splitlines() if line.strip().startswith("`")), "")
    if not checks:  # not a check that failed: the error itself
        return f"{flaky}{type(exc).__name__}: {text[:1000]}"
    return f"{flaky}{'; '.join(checks)}\n    {answer[:300]}\n    {curl[:300]}"


@pytest.mark.parametrize("built", sorted(APPS), indirect=True)
def test_every_operation_answers_as_documented(
    built: Built, request: pytest.FixtureRequest
) -> None:
    name = request.node.callspec.params["built"]
    api = schemathesis.openapi.from_asgi("/openapi.json", built.app)
    tally = Tally()
    failures: list[str] = []
    for result in api.get_all_operations():
        assert isinstance(result, Ok), result
        operation = result.ok()
        if operation.path in COVERED:
            continue
        tally.operations += 1
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            loose = built.loose(operation.method.upper(), operation.path)
            excluded: list[CheckFunction] = [positive_data_acceptance] if loose else []

            @FUZZ
            @given(case=operation.as_strategy(generation_mode=mode))
            def check(case: schemathesis.Case[Any]) -> None:
                headers = _key_for(case, built.headers)
                response = case.call_and_validate(headers=headers, excluded_checks=excluded)  # noqa: B023
                tally.cases += 1
                tally.statuses[response.status_code] += 1

            try:
                check()
            except Unsatisfiable:
                assert mode is GenerationMode.NEGATIVE, operation.label
            except (Exception, BaseExceptionGroup) as exc:
                failures.append(f"{operation.label} [{mode.value}]: {_summary(exc)}")
    print(f"{name}: {tally.operations} operations, {tally.cases} cases, {dict(tally.statuses)}")
    assert not failures, "\n\n".join(failures)
    assert tally.operations and not any(status >= 500 for status in tally.statuses)
