"""Silences and maintenance windows: which window mutes a breach, and when (table)."""

from __future__ import annotations

import pytest

from services.notifier.silencing import MuteWindow, muted_by
from tests.unit.notifier.support import T0, make_breach

RESOLVED = make_breach(kind="breach.resolved", resolved_at=T0)


@pytest.mark.parametrize(
    ("kind", "told", "muted"),
    [
        ("breach.resolved", True, False),  # its receiver was told of the opening
        ("breach.resolved", False, True),  # never told: nothing to close
        ("breach.opened", True, True),  # told of an earlier event: a new one still mutes
        ("breach.updated", True, True),
        ("deadline.warning", True, True),
    ],
)
def test_a_resolution_passes_silences_only_to_whoever_was_told(
    kind: str, told: bool, muted: bool
) -> None:
    breach = RESOLVED.model_copy(update={"kind": kind})
    found = muted_by(breach, [MuteWindow("Silence/x", {}, T0, T0 + 1_000)], T0, told=told)
    assert (found is not None) == muted


W = MuteWindow("Silence/x", {"customer": "acme"}, T0, T0 + 1_000)


@pytest.mark.parametrize(
    ("windows", "now", "expected"),
    [
        ([], T0, None),
        ([W], T0 - 1, None),
        ([W], T0, W),
        ([W], T0 + 999, W),
        ([W], T0 + 1_000, None),
        ([MuteWindow("a", {"customer": "globex"}, T0, T0 + 9)], T0, None),
        ([MuteWindow("a", {}, T0, T0 + 9)], T0, MuteWindow("a", {}, T0, T0 + 9)),
        (
            [MuteWindow("p", {"party": "shopco"}, 0, T0 * 2)],
            T0,
            MuteWindow("p", {"party": "shopco"}, 0, T0 * 2),
        ),
        ([MuteWindow("a", {"customer": "globex"}, 0, T0 * 2), W], T0, W),
    ],
)
def test_muted_by(windows: list[MuteWindow], now: int, expected: MuteWindow | None) -> None:
    assert muted_by(make_breach(), windows, now) == expected


def test_maintenance_window_from_yaml() -> None:
    import yaml

    from shared.definitions.load import parse_document

    doc = parse_document(
        yaml.safe_load(
            """
apiVersion: slawatch/v1
kind: MaintenanceWindow
metadata: {name: db-upgrade}
spec:
  match: {service: checkout}
  start: 2026-12-01T22:00:00Z
  end: "2026-12-02T02:00:00+01:00"
  excludeFromCompliance: true
"""
        )
    )
    assert doc.kind == "MaintenanceWindow"
    spec = doc.spec
    assert (spec.start, spec.end) == (1_796_162_400_000, 1_796_173_200_000)  # type: ignore[union-attr]
