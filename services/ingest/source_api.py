"""``GET /v1/sources``, ``POST /v1/sources/{name}/pause`` and ``.../resume``.

Pause and resume act on this process's runner (per replica, not stored): a paused
source keeps its consumer group membership and its assigned partitions are paused at
once; records a poll already returned are still processed, never skipped. Reading
needs ``config:read``, pausing and resuming ``config:write``.
"""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Response

from services.ingest import problems
from services.ingest.sources import SourceManager
from shared.apikeys.scopes import Scope
from shared.http.auth import require
from shared.http.problems import problem_responses


def sources_router(manager: SourceManager) -> APIRouter:
    router = APIRouter(prefix="/v1/sources", tags=["sources"])

    @router.get(
        "",
        summary="Sources and their state (paused, lag)",
        dependencies=[require(Scope.CONFIG_READ)],
    )
    async def list_sources() -> dict[str, Any]:
        return {"sources": manager.status()}

    @router.post(
        "/{name}/pause",
        responses=problem_responses([404, 422]),
        summary="Stop taking records from a source",
        dependencies=[require(Scope.CONFIG_WRITE)],
    )
    async def pause(name: str) -> Any:
        return _toggle(manager, name, paused=True)

    @router.post(
        "/{name}/resume",
        responses=problem_responses([404, 422]),
        summary="Take records from a paused source again",
        dependencies=[require(Scope.CONFIG_WRITE)],
    )
    async def resume(name: str) -> Any:
        return _toggle(manager, name, paused=False)

    return router


def _toggle(manager: SourceManager, name: str, *, paused: bool) -> Response | dict[str, Any]:
    if not manager.set_paused(name, paused):
        return problems.response(problems.not_found(f"no source named {name!r} runs here"))
    return next(s for s in manager.status() if s["name"] == name)
