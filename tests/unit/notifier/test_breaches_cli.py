"""``slawatch breaches``: the rows, their order, the table, JSON, the change lines and
the watch loop (pure; the query runs against PostgreSQL in
tests/integration/notifier/test_breaches_cli.py)."""

from __future__ import annotations

import argparse
import io
import json
from collections.abc import Sequence
from typing import Any

import pytest

from services.notifier.breaches_cli import (
    Listed,
    ago,
    change_line,
    check,
    rows,
    serialized,
    table,
    watch,
)
from shared.models import BreachAck, BreachRecord
from tests.unit.notifier.support import T0, make_breach

NOW = T0 + 3_725_000  # 1 h 2 m 5 s after T0


def listed(
    breach_id: str,
    *,
    severity: str = "page",
    status: str = "open",
    opened_at: int = T0,
    updated: int = T0,
    acked_by: str | None = None,
    **breach: Any,
) -> Listed:
    event = make_breach(id=breach_id, severity=severity, opened_at=opened_at, **breach)
    record = BreachRecord(
        id=breach_id,
        objective_id=event.objective_id,
        agreement=event.agreement.name,
        service=event.service,
        group=event.group,
        severity=severity,
        status=status,
        opened_at=opened_at,
        resolved_at=updated if status == "resolved" else None,
        last_event=event.model_dump(mode="json"),
    )
    ack = None
    if acked_by is not None:
        ack = BreachAck(breach_id=breach_id, acked_by=acked_by, via="api", at=updated)
    return Listed(record, ack, updated)


@pytest.mark.parametrize(
    ("ms", "text"),
    [(-5, "0 s ago"), (59_999, "59 s ago"), (60_000, "1 m ago"), (3_725_000, "1 h 2 m ago")],
)
def test_ago(ms: int, text: str) -> None:
    assert ago(ms) == text


def test_open_pages_first_then_oldest() -> None:
    got = rows(
        [
            listed("c", severity="ticket", opened_at=T0 - 10_000),
            listed("b", opened_at=T0 + 1_000),
            listed("r", status="resolved", updated=T0 + 2_000),
            listed("a", opened_at=T0, acked_by="ana"),
        ],
        NOW,
    )
    assert [(r[0], r[1]) for r in got] == [
        ("page", "open"),
        ("page", "open"),
        ("ticket", "open"),
        ("page", "resolved"),
    ]
    first = got[0]
    assert first[2] == "1 h 2 m ago (2023-11-14 22:13:20 UTC)"
    assert first[3:6] == ("acme-checkout", "availability", "customer=acme")
    assert first[6] == "SLI 98.0 % (98 of 100 good) vs target 99.9 % over 1h"
    assert first[7] == "ana"
    assert got[3][2].startswith("resolved 1 h 2 m ago")


def test_table_is_aligned_and_plain_off_a_terminal() -> None:
    text = table([listed("a"), listed("b", severity="ticket")], NOW, color=False)
    lines = text.splitlines()
    assert lines[0].split() == [
        "SEVERITY", "STATUS", "SINCE", "AGREEMENT", "OBJECTIVE", "GROUP", "SLI", "ACKED",
    ]  # fmt: skip
    starts = {line.index("acme-checkout") for line in lines[2:4]}
    assert len(starts) == 1  # one column
    assert "\x1b[" not in text
    assert "\x1b[" in table([listed("a")], NOW, color=True)
    assert table([], NOW) == "no breaches\n"


def test_json_carries_the_api_fields_and_the_ack() -> None:
    items = json.loads(serialized([listed("a", acked_by="bo")], "json"))
    assert items[0]["id"] == "a" and items[0]["acked_by"] == "bo"
    assert items[0]["last_event"]["objective_id"] == "acme-checkout/availability"


def test_change_lines() -> None:
    opened = listed("a", updated=T0 + 5_000)
    assert change_line(opened, None).split()[:4] == [
        "22:13:25", "opened", "page", "acme-checkout/availability",
    ]  # fmt: skip
    resolved = listed("a", status="resolved", updated=T0 + 9_000)
    assert change_line(resolved, ("open", T0 + 5_000)).split()[1] == "resolved"
    acked = listed("a", updated=T0 + 7_000, acked_by="ana")
    line = change_line(acked, ("open", T0 + 5_000))
    assert line.split()[1] == "updated" and line.endswith("acked by ana")


async def test_watch_prints_each_change_once() -> None:
    rounds: list[list[Listed]] = [
        [listed("a", updated=T0)],  # the first read: printed as the table, not here
        [listed("a", updated=T0)],  # the same row read again (ms tie): nothing
        [listed("b", updated=T0 + 10), listed("a", status="resolved", updated=T0 + 20)],
        [],
    ]
    asked: list[int | None] = []

    async def fetch(after: int | None) -> Sequence[Listed]:
        asked.append(after)
        return rounds.pop(0)

    slept: list[float] = []

    async def sleep(seconds: float) -> None:
        slept.append(seconds)

    out = io.StringIO()
    await watch(fetch, out, sleep=sleep, interval_s=0.5, rounds=3)  # type: ignore[arg-type]
    assert [line.split()[1:3] for line in out.getvalue().splitlines()] == [
        ["opened", "page"],
        ["resolved", "page"],
    ]
    assert asked == [None, T0, T0, T0 + 19]
    assert slept == [0.5, 0.5, 0.5]


@pytest.mark.parametrize(
    ("changes", "problem"),
    [
        ({"limit": 0}, "--limit is 0; it takes 1 to 500"),
        ({"interval": 0.01}, "--interval is 0.01"),
        ({"watch": True, "output": "json"}, "--watch prints lines for people"),
        ({}, None),
    ],
)
def test_arguments_are_checked(changes: dict[str, Any], problem: str | None) -> None:
    args = argparse.Namespace(limit=50, interval=1.0, watch=False, output="table")
    for name, value in changes.items():
        setattr(args, name, value)
    found = check(args)
    assert found == problem if problem is None else found is not None and problem in found
