"""An SLA's agreement tree: the OLAs and UCs under it, the underpinning breaches that
overlapped each SLA breach (and for how long), the credits on both sides."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from services.notifier.reports.compute import BreachSpan, RollupRow, build_report
from services.notifier.reports.tree import build_tree, overlap_ms
from tests.unit.notifier.reports.support import HOUR, MIN, NOV, make_agreement

END = NOV + 30 * 86_400_000
NOW = NOV + 10 * HOUR


def availability_only(**spec: Any) -> Any:
    agreement = make_agreement(**spec)
    objectives = [o for o in agreement.spec.objectives if o.name == "availability"]
    return agreement.model_copy(
        update={"spec": agreement.spec.model_copy(update={"objectives": objectives})}
    )


def uc(name: str) -> Any:
    agreement = availability_only(
        type="UC",
        provider="payco",
        consumer="shopco",
        underpins="acme-checkout",
        penalties=[{"below": 0.99, "creditPercent": 15}],
        termination=None,
    )
    return agreement.model_copy(
        update={"metadata": agreement.metadata.model_copy(update={"name": name})}
    )


def rows(good: int, valid: int) -> list[RollupRow]:
    return [RollupRow("availability", "customer=acme", {"customer": "acme"}, NOV, good, valid)]


def span(id: str, opened: int, resolved: int | None) -> BreachSpan:
    return BreachSpan(id, "availability", {"customer": "acme"}, "page", opened, resolved)


def test_the_tree_attributes_overlaps_and_sets_credits_side_by_side() -> None:
    sla = build_report(
        availability_only(),
        NOV,
        END,
        now=NOW,
        rollups=rows(90, 100),
        breaches=[span("sla-1", NOV + HOUR, NOV + 3 * HOUR)],
    )
    payments = build_report(
        uc("payments-uc"),
        NOV,
        END,
        now=NOW,
        rollups=rows(95, 100),
        # 30 min before the SLA breach opened, resolved an hour into it
        breaches=[span("uc-1", NOV + 30 * MIN, NOV + 2 * HOUR)],
    )
    hosting = build_report(
        uc("hosting-uc"),
        NOV,
        END,
        now=NOW,
        rollups=rows(100, 100),
        breaches=[span("uc-2", NOV + 5 * HOUR, None)],  # after the SLA breach: no overlap
    )
    tree = build_tree(sla, [payments, hosting])
    assert [(u.agreement, u.type, u.missed) for u in tree.underpinned_by] == [
        ("hosting-uc", "UC", False),
        ("payments-uc", "UC", True),
    ]
    assert tree.underpinned_by[1].objectives[0].attainment == 0.95
    [attribution] = tree.attributions
    assert (attribution.breach, attribution.agreement, attribution.underpinning_breach) == (
        "sla-1",
        "payments-uc",
        "uc-1",
    )
    assert attribution.overlap_ms == HOUR
    assert tree.credit_owed_to_customer == sla.credit.percent > 0
    assert [(c.agreement, c.provider, c.percent) for c in tree.credits_owed_by_suppliers] == [
        ("hosting-uc", "payco", 0.0),
        ("payments-uc", "payco", 15.0),
    ]


def test_an_sla_without_underpinning_agreements_has_an_empty_tree() -> None:
    sla = build_report(availability_only(), NOV, END, now=NOW, rollups=rows(1, 1), breaches=[])
    tree = build_tree(sla, [])
    assert (tree.underpinned_by, tree.attributions, tree.credits_owed_by_suppliers) == ((), (), ())


@given(st.integers(0, 200), st.integers(0, 200), st.integers(0, 200), st.integers(0, 200))
def test_overlap_is_the_shared_time(a0: int, a1: int, b0: int, b1: int) -> None:
    a, b = (min(a0, a1), max(a0, a1)), (min(b0, b1), max(b0, b1))
    brute = sum(1 for t in range(0, 201) if a[0] <= t < a[1] and b[0] <= t < b[1])
    assert overlap_ms(a, b) == brute
