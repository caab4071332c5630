"""``GET /v1/objectives``: every objective of every stored agreement, paged.

    ?agreement=NAME   ?service=NAME   ?kind=ratio|quantile|freshness|deadline
    ?limit=1..500 (default 100)   ?after=<objective_id>  (the page's next_cursor)

One item per objective, in ``objective_id`` order (``<agreement>/<objective>``), with
its agreement's type and parties, its kind, service, window, ``groupBy`` and alerting
policy, and its promise in its own unit (``target``): "99.9 % good over 30d",
"p99 <= 300 ms over 5m", "an event every 2m", "done within 4h". The live state of
each is the evaluator's ``GET /v1/objectives/{agreement}/{objective}/status``.
It needs an API key with ``config:read``.
"""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.config.problems import documented
from shared.apikeys.scopes import Scope
from shared.definitions.model import (
    Agreement,
    DeadlineObjective,
    FreshnessObjective,
    Objective,
    QuantileObjective,
    RatioObjective,
)
from shared.http.auth import require
from shared.models import Definition

MAX_LIMIT = 500
Kind = Literal["ratio", "quantile", "freshness", "deadline"]


class ObjectiveSummary(BaseModel):
    objective_id: str
    agreement: str
    agreement_type: str
    provider: str | None
    consumer: str | None
    objective: str
    kind: str
    service: str
    window: str | None
    target: str
    group_by: list[str]
    alerting: str | None


class ObjectivePage(BaseModel):
    items: list[ObjectiveSummary]
    next_cursor: str | None


def _number(value: float) -> str:
    return f"{value:g}"


def promise(objective: Objective) -> str:
    """What the objective promises, in its own unit."""
    if isinstance(objective, RatioObjective):
        return f"{_number(objective.target * 100)} % good over {objective.window}"
    if isinstance(objective, QuantileObjective):
        label = f"p{_number(objective.quantile * 100)}"
        return f"{label} <= {_number(objective.threshold)} ms over {objective.window}"
    if isinstance(objective, FreshnessObjective):
        return f"an event every {objective.max_silence}"
    assert isinstance(objective, DeadlineObjective)
    if objective.targets:
        each = ", ".join(f"{k}: {v}" for k, v in sorted(objective.targets.items()))
        other = f", else {objective.target}" if objective.target else ""
        return f"done within the target by {objective.target_by} ({each}{other})"
    return f"done within {objective.target}"


def summaries(agreements: list[Agreement]) -> list[ObjectiveSummary]:
    out = []
    for agreement in agreements:
        spec = agreement.spec
        for o in spec.objectives:
            alerting = getattr(o, "alerting", None)
            out.append(
                ObjectiveSummary(
                    objective_id=f"{agreement.metadata.name}/{o.name}",
                    agreement=agreement.metadata.name,
                    agreement_type=spec.type,
                    provider=spec.provider,
                    consumer=spec.consumer,
                    objective=o.name,
                    kind=o.kind,
                    service=o.service,
                    window=getattr(o, "window", None),
                    target=promise(o),
                    group_by=list(o.group_by),
                    alerting=None if alerting is None else alerting.policy,
                )
            )
    return sorted(out, key=lambda s: s.objective_id)


def objectives_router(sessions: async_sessionmaker[AsyncSession]) -> APIRouter:
    """``/objectives`` for the configuration router (mounted under ``/v1``)."""
    router = APIRouter(prefix="/objectives", tags=["objectives"])  # under /v1

    @router.get(
        "",
        response_model=ObjectivePage,
        summary="Every objective of every stored agreement, paged and filtered",
        responses=documented([422]),
        dependencies=[require(Scope.CONFIG_READ)],
    )
    async def list_objectives(
        agreement: Annotated[str | None, Query(max_length=253)] = None,
        service: Annotated[str | None, Query(max_length=64)] = None,
        kind: Kind | None = None,
        limit: Annotated[int, Query(ge=1, le=MAX_LIMIT)] = 100,
        after: Annotated[str | None, Query(max_length=600)] = None,
    ) -> ObjectivePage:
        async with sessions() as session:
            rows = (
                await session.execute(select(Definition).where(Definition.kind == "Agreement"))
            ).scalars()
            agreements = []
            for row in rows:
                try:
                    agreements.append(Agreement.model_validate(row.document))
                except ValueError:
                    continue  # a stored document that no longer validates lists nothing
        found = [
            s
            for s in summaries(agreements)
            if (agreement is None or s.agreement == agreement)
            and (service is None or s.service == service)
            and (kind is None or s.kind == kind)
            and (after is None or s.objective_id > after)
        ]
        page = found[:limit]
        more = len(found) > limit
        return ObjectivePage(items=page, next_cursor=page[-1].objective_id if more else None)

    return router
