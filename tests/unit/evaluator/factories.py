"""Builders for evaluator tests: agreements, events, engines, with a fixed clock."""

from __future__ import annotations

from typing import Any

from services.evaluator.engine import Engine
from services.evaluator.objectives import compile_catalog
from services.evaluator.objectives.ratio import CompiledRatio
from shared.definitions.load import parse_document
from shared.definitions.model import Agreement
from shared.definitions.store import Catalog
from shared.schemas import Event

T0 = 1_700_000_000_000
DETECTED_AT = 1_800_000_000_000


def fixed_clock() -> int:
    return DETECTED_AT


def agreement_doc(name: str = "acme-checkout", **objective: Any) -> dict[str, Any]:
    """A one-objective Agreement document; keyword arguments override the objective."""
    spec: dict[str, Any] = {
        "name": "availability",
        "kind": "ratio",
        "service": "checkout",
        "select": {"type": "request"},
        "good": {"outcome": "good"},
        "target": 0.9,
        "window": "1m",
        "alerting": {"minEvents": 1},
    }
    spec.update(objective)
    spec = {k: v for k, v in spec.items() if v is not None}  # None: leave the field out
    return {
        "apiVersion": "slawatch/v1",
        "kind": "Agreement",
        "metadata": {"name": name, "labels": {"team": "payments"}},
        "spec": {"type": "SLA", "provider": "shopco", "consumer": "acme", "objectives": [spec]},
    }


def agreement(name: str = "acme-checkout", **objective: Any) -> Agreement:
    doc = parse_document(agreement_doc(name, **objective))
    assert isinstance(doc, Agreement)
    return doc


def compiled(**objective: Any) -> CompiledRatio:
    doc = agreement(**objective)
    return CompiledRatio(doc, doc.spec.objectives[0], fixed_clock)


def engine(
    *agreements: Agreement, allowed_lateness_ms: int = 30_000, dedup_horizon_ms: int = 600_000
) -> Engine:
    catalog = Catalog(agreements={a.metadata.name: a for a in agreements}, receivers={})
    return Engine(
        compile_catalog(catalog, fixed_clock),
        allowed_lateness_ms=allowed_lateness_ms,
        dedup_horizon_ms=dedup_horizon_ms,
    )


_counter = iter(range(10**9))


def event(
    time: int,
    outcome: str | None = "good",
    *,
    service: str = "checkout",
    type: str = "request",
    value: float | None = None,
    attributes: dict[str, str] | None = None,
    id: str | None = None,
) -> Event:
    return Event(
        id=id or f"e{next(_counter)}",
        service=service,
        type=type,
        time=time,
        outcome=outcome,  # type: ignore[arg-type]
        value=value,
        attributes=attributes or {},
        received_at=time + 5,
    )
