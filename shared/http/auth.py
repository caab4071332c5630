"""API key authentication for every route: ``Authorization: Bearer <key>``.

Each route declares the scope it needs through one dependency,
:func:`require` (or a :data:`Caller` alias, which also hands the route the key that
called, for the audit trail)::

    @router.post("/v1/silences", dependencies=[require(Scope.BREACHES_ACK)])
    async def create(caller: Annotated[Principal, require(Scope.BREACHES_ACK)]): ...

The dependency finds the app's :class:`Authenticator` (``app.state.authenticator``,
set by :func:`shared.http.app.service_app`) and answers, as problem+json:

=====  ========================  ==============================================
401    ``unauthenticated``       no ``Authorization`` header, not ``Bearer``, not
                                 the shape of a key, unknown or revoked key
401    ``key-expired``           the key is past its expiry
403    ``insufficient-scope``    the key lacks the scope (``admin`` has them all)
429    ``rate-limited``          the key's token bucket is empty; ``Retry-After``
=====  ========================  ==============================================

A 401 carries ``WWW-Authenticate: Bearer``. Unknown and revoked keys get the same
answer. The rate limit is per key and per service instance.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Annotated, Any

from fastapi import Depends, FastAPI, Request
from fastapi.routing import iter_route_contexts
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from shared import db
from shared.apikeys import tokens
from shared.apikeys.cache import KeyCache, KeySource
from shared.apikeys.ratelimit import Buckets, Rate
from shared.apikeys.scopes import Scope, grants
from shared.errors import ConfigError
from shared.http.problems import HttpProblem, Problem
from shared.settings import Settings
from shared.timeutil import Clock, wall_clock_ms


def monotonic_ms() -> int:
    return time.monotonic_ns() // 1_000_000


@dataclass(frozen=True)
class Principal:
    """The key a request came with: its name is the actor in audit records."""

    name: str
    scopes: frozenset[Scope]


def _unauthenticated(detail: str, slug: str = "unauthenticated") -> HttpProblem:
    return HttpProblem(
        Problem(401, slug, "Unauthorized", detail, None),
        {"WWW-Authenticate": 'Bearer realm="slawatch"'},
    )


class Authenticator:
    """Checks a request's key against ``keys``, its scope and its rate limit."""

    def __init__(
        self,
        keys: KeySource,
        *,
        default_rate: Rate,
        clock: Clock = wall_clock_ms,
        monotonic: Clock = monotonic_ms,
    ) -> None:
        self.keys = keys
        self.default_rate = default_rate
        self._clock = clock
        self._monotonic = monotonic
        self._buckets = Buckets()

    def check(self, authorization: str | None, needed: Scope) -> Principal:
        """The principal, or :class:`HttpProblem` (401 / 403 / 429)."""
        if not authorization:
            raise _unauthenticated("send an API key: Authorization: Bearer <key>")
        scheme, _, key = authorization.strip().partition(" ")
        key = key.strip()
        if scheme.lower() != "bearer" or not key:
            raise _unauthenticated("the Authorization header must be: Bearer <key>")
        if not tokens.well_formed(key):
            raise _unauthenticated("this is not an API key (sw_ and 43 characters)")
        entry = self.keys.find(tokens.digest(key))
        if entry is None:
            raise _unauthenticated("unknown or revoked API key")
        now = self._clock()
        if entry.expires_at_ms is not None and now >= entry.expires_at_ms:
            raise _unauthenticated(f"API key {entry.name!r} has expired", "key-expired")
        if not grants(entry.scopes, needed):
            raise HttpProblem(
                Problem(
                    403,
                    "insufficient-scope",
                    "Forbidden",
                    f"API key {entry.name!r} lacks the scope {needed.value!r}",
                    None,
                )
            )
        wait_ms = self._buckets.take(entry.name, entry.rate or self.default_rate, self._monotonic())
        if wait_ms:
            retry_s = max(1, math.ceil(wait_ms / 1000))
            raise HttpProblem(
                Problem(
                    429,
                    "rate-limited",
                    "Too Many Requests",
                    f"API key {entry.name!r} is over its rate limit; retry after {retry_s} s",
                    None,
                ),
                {"Retry-After": str(retry_s)},
            )
        self.keys.used(entry.name, now)
        return Principal(entry.name, entry.scopes)


_bearer = HTTPBearer(auto_error=False, description="an API key: `slawatch keys create`")


class Require:
    """The dependency :func:`require` makes; ``scope`` is what the route needs (the
    route-coverage test reads it from each route's dependency tree)."""

    def __init__(self, scope: Scope) -> None:
        self.scope = scope

    # async: a sync dependency would run in a worker thread, a hop per request.
    async def __call__(
        self,
        request: Request,
        # Declared for the OpenAPI security scheme (and the docs' Authorize button);
        # the raw header is checked below, for precise answers.
        _documented: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> Principal:
        authenticator: Authenticator = request.app.state.authenticator
        principal = authenticator.check(request.headers.get("authorization"), self.scope)
        request.state.principal = principal
        return principal

    def __repr__(self) -> str:
        return f"require({self.scope.value!r})"


#: One callable per scope: FastAPI runs a dependency once per request per callable,
#: so a route naming its scope twice (route and parameter) is checked (and
#: rate-limited) once.
_REQUIRES = {scope: Require(scope) for scope in Scope}


def require(scope: Scope) -> Any:
    """The dependency that admits a request holding ``scope``."""
    return Depends(_REQUIRES[scope])


EventsWriter = Annotated[Principal, require(Scope.EVENTS_WRITE)]
ConfigReader = Annotated[Principal, require(Scope.CONFIG_READ)]
ConfigWriter = Annotated[Principal, require(Scope.CONFIG_WRITE)]
BreachesReader = Annotated[Principal, require(Scope.BREACHES_READ)]
BreachesAcker = Annotated[Principal, require(Scope.BREACHES_ACK)]
ReportsReader = Annotated[Principal, require(Scope.REPORTS_READ)]
Admin = Annotated[Principal, require(Scope.ADMIN)]


def default_rate(settings: Settings) -> Rate:
    """The token bucket of a key created without ``--rate`` / ``--burst``."""
    return Rate(settings.api_key_rate_per_s, settings.api_key_burst)


def key_cache(settings: Settings, sessions: async_sessionmaker[AsyncSession]) -> KeyCache:
    """The key cache of a service with a database, as the settings say."""
    return KeyCache(
        sessions,
        db.database_url(settings),
        refresh_ms=settings.api_key_refresh_ms,
        touch_every_ms=settings.api_key_touch_every_ms,
    )


#: Paths answered without a key: what the service is (``/``), liveness and readiness
#: (probes), the metrics when open (``metrics_auth`` off), the API description, and
#: the signed ack link (the link is its own credential), and the console's sign-in and
#: sign-out (its other pages require a session: services.notifier.console).
PUBLIC_PATHS = frozenset(
    {
        "/",
        "/healthz",
        "/readyz",
        "/metrics",
        "/openapi.json",
        "/docs",
        "/docs/oauth2-redirect",
        "/redoc",
        "/v1/ack/{token}",
        "/console/login",
        "/console/logout",
    }
)


@dataclass(frozen=True)
class RouteInfo:
    """One route of an app as it serves it: path, methods and the scopes it requires
    (read from its dependency tree; empty: the route takes no key)."""

    path: str
    methods: frozenset[str]
    scopes: frozenset[Scope]


def _scopes(dependant: Any) -> frozenset[Scope]:
    found: set[Scope] = set()
    todo = [dependant] if dependant is not None else []
    while todo:
        current = todo.pop()
        if isinstance(current.call, Require):
            found.add(current.call.scope)
        todo.extend(current.dependencies)
    return frozenset(found)


def routes_of(app: FastAPI) -> list[RouteInfo]:
    """Every route the app serves, included routers' routes with their prefixes and
    router-level dependencies."""
    return [
        RouteInfo(
            str(context.path or ""),
            frozenset(context.methods or ()),
            _scopes(getattr(context, "dependant", None)),
        )
        for context in iter_route_contexts(app.routes)
    ]


def unguarded_routes(app: FastAPI) -> list[str]:
    """Routes that neither require a scope nor are in :data:`PUBLIC_PATHS`."""
    return [
        f"{','.join(sorted(r.methods)) or '*'} {r.path}"
        for r in routes_of(app)
        if not r.scopes and r.path not in PUBLIC_PATHS
    ]


def check_guarded(app: FastAPI) -> None:
    """Refuse to serve an app with a route that takes no key by mistake."""
    missing = unguarded_routes(app)
    if missing:
        raise ConfigError(f"routes without a required scope: {', '.join(missing)}")
