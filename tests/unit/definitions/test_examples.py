"""The example set: valid as a whole, and it shows every agreement type and kind."""

from __future__ import annotations

from pathlib import Path

from shared.definitions.load import load_paths
from shared.definitions.model import Agreement, Party

EXAMPLES = Path(__file__).parents[3] / "examples"


def test_examples_cover_the_model() -> None:
    documents = load_paths([EXAMPLES])
    kinds = {d.kind for d in documents}
    assert {"Agreement", "Party", "Service", "Receiver", "Calendar", "MaintenanceWindow"} <= kinds
    agreements = {d.metadata.name: d for d in documents if isinstance(d, Agreement)}
    assert {a.spec.type for a in agreements.values()} == {"SLA", "OLA", "UC"}
    objective_kinds = {o.kind for a in agreements.values() for o in a.spec.objectives}
    assert objective_kinds == {"ratio", "quantile", "deadline", "freshness"}
    roles = {d.spec.role for d in documents if isinstance(d, Party)}
    assert roles == {"provider", "customer", "internal-team", "supplier"}
    for agreement in agreements.values():
        if agreement.spec.underpins is not None:
            assert agreements[agreement.spec.underpins].spec.type == "SLA"


def test_storefront_credits() -> None:
    documents = load_paths([EXAMPLES])
    sla = next(
        d for d in documents if isinstance(d, Agreement) and d.metadata.name == "acme-storefront"
    )
    assert sla.spec.credit_percent(0.9995, "availability") == 0
    assert sla.spec.credit_percent(0.998, "availability") == 10
    assert sla.spec.credit_percent(0.992, "availability") == 25
    assert sla.spec.credit_percent(0.95, "availability") == 50
    assert sla.spec.credit_percent(0.95, "latency") == 5
    assert sla.spec.termination is not None
    assert sla.spec.termination.consecutive_missed_periods == 3
