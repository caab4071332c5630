"""Routing decisions as a table."""

from __future__ import annotations

import pytest

from services.notifier.routing import breach_value, route
from shared.definitions.model import Route
from tests.unit.notifier.support import make_breach


def r(receivers: list[str], *, cont: bool = False, default: bool = False, **match: str) -> Route:
    return Route(match=match, receivers=receivers, continue_=cont, default=default)


CASES = [
    pytest.param([], [], id="no routes"),
    pytest.param([r(["all"])], ["all"], id="empty match is everything"),
    pytest.param([r(["oncall"], severity="page")], ["oncall"], id="severity matches"),
    pytest.param([r(["oncall"], severity="ticket")], [], id="severity differs"),
    pytest.param(
        [r(["a"], service="checkout", objective="availability")], ["a"], id="all keys hold"
    ),
    pytest.param([r(["a"], service="checkout", objective="latency")], [], id="one key fails"),
    pytest.param([r(["a"], kind="breach.opened")], ["a"], id="kind"),
    pytest.param([r(["a"], kind="breach.resolved")], [], id="other kind"),
    pytest.param([r(["a"], agreement="acme-checkout")], ["a"], id="agreement"),
    pytest.param([r(["a"], customer="acme")], ["a"], id="group attribute"),
    pytest.param([r(["a"], customer="globex")], [], id="group attribute differs"),
    pytest.param([r(["a"], region="eu")], [], id="missing attribute never matches"),
    pytest.param([r(["a"], team="payments")], ["a"], id="label when no group attribute"),
    pytest.param([r(["a"], provider="shopco", consumer="acme")], ["a"], id="parties"),
    pytest.param([r(["a"], agreement_type="OLA")], [], id="agreement type"),
    pytest.param(
        [r(["a"], severity="page"), r(["b"], severity="page")], ["a"], id="first match wins"
    ),
    pytest.param(
        [r(["a"], severity="info"), r(["b"], severity="page")], ["b"], id="first that matches"
    ),
    pytest.param(
        [
            r(["a", "b"], cont=True),
            r(["b", "c"], cont=True, severity="page"),
            r(["d"], severity="info"),
            r(["a", "e"]),
            r(["f"]),
        ],
        ["a", "b", "c", "e"],
        id="continue: every match up to the first without it, deduplicated, in order",
    ),
    pytest.param(
        [r(["d"], default=True), r(["a"], severity="info")], ["d"], id="default when none match"
    ),
    pytest.param(
        [r(["d"], default=True), r(["a"], severity="page")], ["a"], id="default only as fallback"
    ),
    pytest.param([r(["a"], party="acme")], ["a"], id="party is the consumer"),
    pytest.param([r(["a"], party="shopco")], ["a"], id="party is the provider"),
    pytest.param([r(["a"], party="globex")], [], id="party of neither"),
]


@pytest.mark.parametrize(("routes", "expected"), CASES)
def test_route(routes: list[Route], expected: list[str]) -> None:
    assert route(make_breach(), routes) == expected


def test_fixed_keys_win_over_group_attributes() -> None:
    breach = make_breach(group={"severity": "low"})
    assert breach_value(breach, "severity") == "page"
