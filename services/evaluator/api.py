"""The evaluator's HTTP API: operations endpoints and the status of objectives.

``GET /v1/objectives/{agreement}/{objective}/status`` reads the in-memory state of
the partitions *this instance* owns (``scope: "owned-partitions"``); with several
instances each answers for its share of the groups. It needs ``breaches:read``.
"""

from __future__ import annotations

from fastapi import APIRouter, FastAPI
from prometheus_client import CollectorRegistry
from pydantic import BaseModel

from services.evaluator.engine import Engine
from services.evaluator.objectives.base import GroupStatus
from shared.apikeys.scopes import Scope
from shared.http.app import service_app
from shared.http.auth import Authenticator, require
from shared.http.problems import HttpProblem, Problem, problem_responses
from shared.numbers import tidy, tidy_or_none
from shared.runtime import ReadinessCheck
from shared.schemas import WindowSli
from shared.timeutil import rfc3339_or_none

SCOPE = "owned-partitions"


class GroupStatusPublic(BaseModel):
    """One group of an objective: the SLI over its window, and for burn-rate objectives
    the SLI and burn rate per alerting window and the error budget left."""

    group: dict[str, str]
    partition: int
    window: str
    target: float
    sli: float | None
    good: int
    valid: int
    active_breach_id: str | None
    opened_at: int | None
    event_time: int | None
    severity: str | None = None
    windows: list[WindowSli] = []
    burn_rates: dict[str, float] = {}
    budget_remaining: float | None = None
    #: ``opened_at`` and ``event_time`` (epoch ms) in RFC 3339, UTC
    opened_at_rfc3339: str | None = None
    event_time_rfc3339: str | None = None


class ObjectiveStatusPublic(BaseModel):
    """An objective's groups as this instance sees them."""

    objective_id: str
    scope: str = SCOPE
    partitions: list[int]
    groups: list[GroupStatusPublic]


def _group_public(partition: int, status: GroupStatus) -> GroupStatusPublic:
    """A group's status as the API shows it: ratios without float noise, times in epoch
    ms and RFC 3339."""
    return GroupStatusPublic(
        group=status.group,
        partition=partition,
        window=status.window,
        target=tidy(status.target),
        sli=tidy_or_none(status.sli),
        good=status.good,
        valid=status.valid,
        active_breach_id=status.active_breach_id,
        opened_at=status.opened_at,
        event_time=status.clock,
        severity=status.severity,
        windows=[w.model_copy(update={"sli": tidy_or_none(w.sli)}) for w in status.windows],
        burn_rates={window: tidy(rate) for window, rate in status.burn_rates.items()},
        budget_remaining=tidy_or_none(status.budget_remaining),
        opened_at_rfc3339=rfc3339_or_none(status.opened_at),
        event_time_rfc3339=rfc3339_or_none(status.clock),
    )


def objectives_router(engine: Engine) -> APIRouter:
    """``/v1/objectives/...``: read-only views of the engine's in-memory state."""
    router = APIRouter(prefix="/v1/objectives", tags=["objectives"])

    @router.get(
        "/{agreement}/{objective}/status",
        response_model=ObjectiveStatusPublic,
        responses=problem_responses([404]),
        dependencies=[require(Scope.BREACHES_READ)],
    )
    async def objective_status(agreement: str, objective: str) -> ObjectiveStatusPublic:
        objective_id = f"{agreement}/{objective}"
        if objective_id not in engine.objectives:
            detail = f"no objective {objective_id!r} in the loaded definitions"
            raise HttpProblem(Problem(404, None, "Not Found", detail, None))
        groups = [
            _group_public(entry.partition, entry.status) for entry in engine.status(objective_id)
        ]
        return ObjectiveStatusPublic(
            objective_id=objective_id, partitions=engine.partitions, groups=groups
        )

    return router


def create_app(
    engine: Engine,
    registry: CollectorRegistry,
    checks: dict[str, ReadinessCheck],
    *,
    auth: Authenticator,
    metrics_auth: bool = False,
) -> FastAPI:
    """The app (``shared.http.app.service_app``); nothing is created at import time."""
    app = service_app(
        "slawatch evaluator",
        summary="Sliding-window SLA state per objective; opens and resolves breaches.",
        auth=auth,
        registry=registry,
        checks=checks,
        metrics_auth=metrics_auth,
        docs_url=None,
        redoc_url=None,
    )
    app.include_router(objectives_router(engine))
    return app
