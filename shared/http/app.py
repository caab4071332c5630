"""How each service builds its FastAPI app: one skeleton for all three.

:func:`service_app` gives an app with

- the :class:`~shared.http.auth.Authenticator` every ``require(scope)`` dependency
  uses (``app.state.authenticator``);
- ``/`` (open): what the service is, its version, and links to its API description
  and ops routes, so a person who opens the port learns where to go;
- the ops routes (``/healthz``, ``/readyz`` open; ``/metrics`` open unless
  ``metrics_auth``, then it needs ``metrics:read``);
- problem+json answers for raised problems, framework errors and invalid requests
  (``shared.http.problems.install_handlers``);
- optionally, 503 answers instead of 500 while a dependency is away
  (``shared.runtime.answer_outages``);
- a request-body limit applied while the body is read (``max_body_bytes``, default
  :data:`~shared.http.limits.DEFAULT_MAX_BODY_BYTES`, 1 MiB; 413 problem+json, see
  :mod:`shared.http.limits`), documented on every operation that takes a body.

The service then includes its own routers; every route declares its scope
(tests/unit/test_route_auth.py walks each app's route table).
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Callable, Mapping
from typing import Any

from fastapi import FastAPI
from prometheus_client import CollectorRegistry
from pydantic import BaseModel
from starlette.responses import Response

from shared.apikeys.scopes import Scope
from shared.http.auth import Authenticator
from shared.http.limits import DEFAULT_MAX_BODY_BYTES, BodyLimit
from shared.http.problems import PROBLEM_MEDIA_TYPE, ProblemModel, install_handlers
from shared.runtime import ReadinessCheck, answer_outages, ops_router


class AboutModel(BaseModel):
    """The answer of ``/``."""

    name: str
    summary: str
    version: str
    api_version: str
    links: dict[str, str]


#: the links of every service's ``/`` (``docs`` where the app serves them); a service
#: adds its own (``links=``)
OPS_LINKS = {
    "api": "/openapi.json",
    "docs": "/docs",
    "health": "/healthz",
    "ready": "/readyz",
    "metrics": "/metrics",
}


def package_version() -> str:
    try:
        return importlib.metadata.version("slawatch")
    except importlib.metadata.PackageNotFoundError:  # run from a tree, not installed
        return "unknown"


def add_home_link(app: FastAPI, name: str, path: str) -> None:
    """List ``path`` under ``name`` in the app's ``/`` (a part mounted later)."""
    app.state.about.links[name] = path


def service_app(
    title: str,
    *,
    summary: str,
    auth: Authenticator,
    registry: CollectorRegistry,
    checks: dict[str, ReadinessCheck],
    metrics_auth: bool = False,
    outage: Callable[[BaseException], Response] | None = None,
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    links: Mapping[str, str] | None = None,
    **fastapi_options: Any,
) -> FastAPI:
    """A service's app with the shared skeleton (module docstring)."""
    app = FastAPI(title=title, summary=summary, **fastapi_options)
    about = AboutModel(
        name=title,
        summary=summary,
        version=package_version(),
        api_version=app.version,
        links={
            **{k: v for k, v in OPS_LINKS.items() if k != "docs" or app.docs_url},
            **(links or {}),
        },
    )

    app.state.about = about

    @app.get("/", tags=["operations"], response_model=AboutModel)
    async def home() -> AboutModel:
        return about

    app.add_middleware(BodyLimit, max_body_bytes=max_body_bytes)
    app.state.authenticator = auth
    app.include_router(ops_router(registry, checks, Scope.METRICS_READ if metrics_auth else None))
    install_handlers(app)
    if outage is not None:
        answer_outages(app, outage)
    _document_shared_answers(app, max_body_bytes)
    return app


_AUTH_ANSWERS = {
    "401": "No key, not a key, unknown, revoked or expired key (problem+json)",
    "403": "The key lacks the scope this operation needs (problem+json)",
    "429": "The key is over its rate limit; retry after Retry-After (problem+json)",
}


#: operations that may carry a body (documented with the 413 even without a schema)
_BODY_METHODS = ("post", "put", "patch")


def _document_shared_answers(app: FastAPI, max_body_bytes: int) -> None:
    """Every operation that takes a key documents its 401, 403 and 429 answers; every
    one that takes a body, the 413 of :class:`~shared.http.limits.BodyLimit`."""
    too_large = f"Body over the size limit ({max_body_bytes} bytes here) (problem+json)"
    build = app.openapi

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        schema = build()
        media = {PROBLEM_MEDIA_TYPE: {"schema": {"$ref": "#/components/schemas/ProblemModel"}}}
        components = schema.setdefault("components", {}).setdefault("schemas", {})
        components.setdefault("ProblemModel", ProblemModel.model_json_schema())
        for operations in schema.get("paths", {}).values():
            for method, operation in operations.items():
                if not isinstance(operation, dict):
                    continue
                if operation.get("security"):
                    responses = operation.setdefault("responses", {})
                    for status, text in _AUTH_ANSWERS.items():
                        responses.setdefault(status, {"description": text, "content": media})
                if "requestBody" in operation or method in _BODY_METHODS:
                    responses = operation.setdefault("responses", {})
                    # a route's own 413 (ingest: decoded size, item count) stays
                    responses.setdefault("413", {"description": too_large, "content": media})
        app.openapi_schema = schema
        return schema

    app.openapi = openapi  # type: ignore[method-assign]
