"""Service runtime: signal handling in ``main`` only, supervised background tasks,
the HTTP server, and the health/readiness/metrics endpoints every service has."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Awaitable, Callable, Coroutine, Iterator
from typing import Any

import asyncpg
import uvicorn
from aiokafka.errors import KafkaError
from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CollectorRegistry
from sqlalchemy.exc import SQLAlchemyError

from shared.apikeys.scopes import Scope
from shared.errors import InfrastructureError
from shared.http.auth import check_guarded, require
from shared.metrics import exposition
from shared.readiness import Check, report, run_checks
from shared.reconnect import is_transient

log = logging.getLogger(__name__)

#: A readiness check: ``bool`` or a :class:`shared.readiness.CheckResult`; dependency
#: checks answer from a background probe (``shared.readiness.Monitor``).
ReadinessCheck = Check


class Supervisor:
    """Owns a service's background tasks; the first one that fails stops the service."""

    def __init__(self) -> None:
        self.stop_requested = asyncio.Event()
        self.failure: BaseException | None = None
        self._tasks: list[asyncio.Task[Any]] = []

    def spawn(self, name: str, coro: Coroutine[Any, Any, Any]) -> asyncio.Task[Any]:
        task = asyncio.create_task(coro, name=name)
        task.add_done_callback(self._on_done)
        self._tasks.append(task)
        return task

    def _on_done(self, task: asyncio.Task[Any]) -> None:
        if task.cancelled():
            return
        error = task.exception()
        if error is not None:
            log.error("task %s failed; stopping", task.get_name(), exc_info=error)
            self.failure = self.failure or error
            self.stop_requested.set()
        elif not self.stop_requested.is_set():
            log.error("task %s ended unexpectedly; stopping", task.get_name())
            self.failure = self.failure or RuntimeError(f"task {task.get_name()} ended")
            self.stop_requested.set()

    def stop(self) -> None:
        self.stop_requested.set()

    async def wait(self) -> None:
        await self.stop_requested.wait()

    async def cancel_all(self) -> None:
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)


#: ``/readyz`` answers 503 (same body) while a check fails; documented for clients and
#: for the schemathesis run that holds every answer to the OpenAPI.
READYZ_RESPONSES: dict[int | str, dict[str, Any]] = {
    503: {
        "description": "not ready: `checks` names each failing dependency and why",
        "content": {"application/json": {"schema": {"type": "object"}}},
    }
}


def ops_router(
    registry: CollectorRegistry,
    checks: dict[str, ReadinessCheck],
    metrics_scope: Scope | None = None,
) -> APIRouter:
    """``/healthz`` (alive), ``/readyz`` (dependencies reachable, 503 with a reason per
    check; see ``shared.readiness``), ``/metrics`` (open, or needing ``metrics_scope``).
    """
    router = APIRouter(tags=["operations"])
    metrics_guard = [require(metrics_scope)] if metrics_scope is not None else []

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", responses=READYZ_RESPONSES)
    async def readyz() -> JSONResponse:
        ready, body = report(await run_checks(checks))
        return JSONResponse(body, status_code=200 if ready else 503)

    @router.get("/metrics", dependencies=metrics_guard, response_class=PlainTextResponse)
    async def metrics() -> Response:
        body, content_type = exposition(registry)
        return Response(body, media_type=content_type)

    return router


#: What a request can raise when the database (or broker) is away.
OUTAGE_ERRORS: tuple[type[Exception], ...] = (
    SQLAlchemyError,
    OSError,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    KafkaError,
)


def answer_outages(app: FastAPI, respond: Callable[[BaseException], Response]) -> None:
    """A request that fails because a dependency is away (``shared.reconnect.is_transient``)
    is answered ``respond(error)`` (a 503 problem) instead of a 500; any other error
    stays a 500."""

    async def handler(_request: Request, error: Exception) -> Response:
        if not is_transient(error):
            raise error
        log.warning("request failed during an outage: %s", type(error).__name__)
        return respond(error)

    for kind in OUTAGE_ERRORS:
        app.add_exception_handler(kind, handler)


class _QuietServer(uvicorn.Server):
    """uvicorn without its own signal capture (it would take SIGTERM/SIGINT from ``main``
    and stop the server before the service's stop event is set)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield


class HttpServer:
    """uvicorn inside our loop; signals stay with ``main``."""

    def __init__(self, app: FastAPI, host: str, port: int) -> None:
        config = uvicorn.Config(
            app, host=host, port=port, log_config=None, access_log=False, lifespan="off"
        )
        self.server = _QuietServer(config)

    async def serve(self) -> None:
        """Serve until :meth:`stop`. A bind failure raises :class:`InfrastructureError`
        (uvicorn calls ``sys.exit``, which would otherwise escape the event loop).
        A service app (one with an authenticator) with a route that takes no key by
        mistake is refused (``shared.http.auth.check_guarded``)."""
        app = self.server.config.app
        if isinstance(app, FastAPI) and hasattr(app.state, "authenticator"):
            check_guarded(app)
        try:
            await self.server.serve()
        except SystemExit as exc:
            config = self.server.config
            raise InfrastructureError(
                f"HTTP server could not start on {config.host}:{config.port}"
            ) from exc

    async def started(self) -> None:
        # uvicorn exposes only a flag, no event, for "listening"
        while not self.server.started:  # noqa: ASYNC110
            await asyncio.sleep(0.01)

    def stop(self) -> None:
        self.server.should_exit = True


def run_main(body: Callable[[asyncio.Event], Awaitable[None]]) -> int:
    """Run a service: SIGTERM/SIGINT set the stop event the body awaits. Exit code 0 on
    a clean stop, 1 on failure."""

    async def runner() -> int:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, stop.set)
        try:
            await body(stop)
        except Exception:
            log.exception("service failed")
            return 1
        return 0

    with contextlib.suppress(KeyboardInterrupt):
        return asyncio.run(runner())
    return 130
