"""Every route of every service takes a key, by construction.

Each app is built as its service builds it (ingest with its sources and
configuration routers, as ``services.ingest.main`` includes them); the test walks
the route table and, for every route that is not in ``PUBLIC_PATHS``, reads the
scope it requires from its dependency tree (``shared.http.auth.route_scopes``). A
route that declares none fails here, and the service refuses to serve it
(``check_guarded``). For each guarded route: no key, a malformed header, a wrong,
revoked or expired key, and a key with every scope but the one needed are refused
(401 / 403, problem+json); a key with just that scope, and an admin key, get in.
"""

from __future__ import annotations

import re
from collections.abc import Iterator

import httpx
import pytest
from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from sqlalchemy.ext.asyncio import async_sessionmaker, create_async_engine

from services.evaluator.api import create_app as evaluator_app
from services.ingest.api import IngestDeps
from services.ingest.api import create_app as ingest_app
from services.ingest.config import config_router
from services.ingest.metrics import IngestMetrics
from services.ingest.source_api import sources_router
from services.ingest.sources import SourceManager
from services.notifier.api import create_app as notifier_app
from shared.apikeys.cache import StaticKeys
from shared.apikeys.scopes import Scope
from shared.http.auth import PUBLIC_PATHS, Authenticator, routes_of, unguarded_routes
from shared.http.problems import PROBLEM_MEDIA_TYPE
from shared.topics import Topics
from tests.keys import ADMIN_KEY, ADMIN_NAME, TEST_RATE, bearer, entry
from tests.unit.evaluator.factories import agreement, engine
from tests.unit.ingest.test_api import FakePublisher

NOW = 1_800_000_000_000
WRONG = "sw_" + "W" * 43
REVOKED = "sw_" + "R" * 43
EXPIRED = "sw_" + "E" * 43


def only(scope: Scope) -> str:
    return "sw_" + scope.value.replace(":", "-").ljust(43, "o")[:43]


def all_but(scope: Scope) -> str:
    return "sw_" + ("not-" + scope.value.replace(":", "-")).ljust(43, "x")[:43]


def keyset() -> StaticKeys:
    entries = [entry(ADMIN_KEY, ADMIN_NAME, [Scope.ADMIN])]
    entries.append(entry(REVOKED, "revoked", [Scope.ADMIN]))
    entries.append(entry(EXPIRED, "expired", [Scope.ADMIN], expires_at_ms=NOW - 1))
    for scope in Scope:
        entries.append(entry(only(scope), f"only-{scope.value}", [scope]))
        others = [s for s in Scope if s not in (scope, Scope.ADMIN)]
        entries.append(entry(all_but(scope), f"but-{scope.value}", others))
    keys = StaticKeys(entries)
    keys.revoke("revoked")
    return keys


def authenticator() -> Authenticator:
    return Authenticator(keyset(), default_rate=TEST_RATE, clock=lambda: NOW)


def nowhere() -> async_sessionmaker:  # type: ignore[type-arg]
    # A database nobody listens on: a handler that gets past auth fails fast (503/500);
    # only 401/403 matter here.
    return async_sessionmaker(create_async_engine("postgresql+asyncpg://x@127.0.0.1:9/x"))


def build_ingest(metrics_auth: bool = False) -> FastAPI:
    registry = CollectorRegistry()
    deps = IngestDeps(
        publisher=FakePublisher(),
        topics=Topics.from_prefix("u"),
        metrics=IngestMetrics(registry),
        clock=lambda: NOW,
        max_body_bytes=2048,
        max_batch_items=5,
    )
    app = ingest_app(deps, registry, {}, auth=authenticator(), metrics_auth=metrics_auth)
    app.include_router(sources_router(SourceManager(lambda n, s: None)))  # type: ignore[arg-type,return-value]
    app.include_router(config_router(nowhere()))
    return app


def build_evaluator(metrics_auth: bool = False) -> FastAPI:
    return evaluator_app(
        engine(agreement()),
        CollectorRegistry(),
        {},
        auth=authenticator(),
        metrics_auth=metrics_auth,
    )


def build_notifier(metrics_auth: bool = False) -> FastAPI:
    return notifier_app(
        nowhere(), CollectorRegistry(), {}, auth=authenticator(), metrics_auth=metrics_auth
    )


BUILDERS = {"ingest": build_ingest, "evaluator": build_evaluator, "notifier": build_notifier}


def operations(app: FastAPI) -> Iterator[tuple[str, str, Scope]]:
    """(method, concrete path, scope) of every guarded route."""
    for route in routes_of(app):
        if route.path in PUBLIC_PATHS:
            continue
        assert len(route.scopes) == 1, f"{route.path}: one scope per route, got {route.scopes}"
        path = re.sub(r"\{number\}", "1", route.path)
        path = re.sub(r"\{[^}]+\}", "x", path)
        for method in sorted(route.methods):
            if method != "HEAD":
                yield method, path, next(iter(route.scopes))


@pytest.mark.parametrize("service", sorted(BUILDERS))
def test_every_route_declares_a_scope(service: str) -> None:
    app = BUILDERS[service]()
    assert unguarded_routes(app) == []
    assert len(list(operations(app))) >= 1


def test_a_route_without_a_scope_is_found() -> None:
    app = build_evaluator()

    @app.get("/v1/forgotten")
    async def forgotten() -> dict[str, str]:
        return {}

    assert unguarded_routes(app) == ["GET /v1/forgotten"]


def refused(response: httpx.Response, status: int, what: str) -> None:
    assert response.status_code == status, f"{what}: {response.status_code} {response.text}"
    assert response.headers["content-type"].startswith(PROBLEM_MEDIA_TYPE), what
    body = response.json()
    assert body["status"] == status and body["detail"], what
    if status == 401:
        assert response.headers["www-authenticate"].startswith("Bearer"), what


@pytest.mark.parametrize("service", sorted(BUILDERS))
async def test_every_route_refuses_and_admits(service: str) -> None:
    app = BUILDERS[service]()
    transport = httpx.ASGITransport(app=app, raise_app_exceptions=False)
    async with httpx.AsyncClient(transport=transport, base_url="http://svc") as http:
        for method, path, scope in operations(app):
            what = f"{service} {method} {path} ({scope.value})"

            async def call(headers: dict[str, str], method: str = method, path: str = path):  # type: ignore[no-untyped-def]
                return await http.request(method, path, headers=headers)

            refused(await call({}), 401, f"{what}, no key")
            refused(await call({"Authorization": f"Basic {ADMIN_KEY}"}), 401, f"{what}, Basic")
            refused(await call({"Authorization": "Bearer not-a-key"}), 401, f"{what}, malformed")
            refused(await call({"Authorization": "Bearer"}), 401, f"{what}, empty")
            refused(await call(bearer(WRONG)), 401, f"{what}, wrong key")
            refused(await call(bearer(REVOKED)), 401, f"{what}, revoked key")
            expired = await call(bearer(EXPIRED))
            refused(expired, 401, f"{what}, expired key")
            assert expired.json()["type"] == "urn:slawatch:problem:key-expired"
            under = await call(bearer(all_but(scope)))
            refused(under, 403, f"{what}, every scope but {scope.value}")
            assert scope.value in under.json()["detail"]
            for key in (only(scope), ADMIN_KEY):
                admitted = await call(bearer(key))
                assert admitted.status_code not in (401, 403, 429), (
                    f"{what}: {admitted.status_code} {admitted.text}"
                )


@pytest.mark.parametrize("service", sorted(BUILDERS))
async def test_probes_are_open_and_metrics_protectable(service: str) -> None:
    for metrics_auth in (False, True):
        app = BUILDERS[service](metrics_auth)
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app), base_url="http://svc"
        ) as http:
            assert (await http.get("/healthz")).status_code == 200
            assert (await http.get("/readyz")).status_code == 200
            metrics = await http.get("/metrics")
            if not metrics_auth:
                assert metrics.status_code == 200
                continue
            refused(metrics, 401, f"{service} /metrics without a key")
            refused(
                await http.get("/metrics", headers=bearer(all_but(Scope.METRICS_READ))),
                403,
                f"{service} /metrics without metrics:read",
            )
            for key in (only(Scope.METRICS_READ), ADMIN_KEY):
                assert (await http.get("/metrics", headers=bearer(key))).status_code == 200
