"""A report as JSON, CSV and HTML."""

from __future__ import annotations

import csv
import io
import json
from dataclasses import replace

from services.notifier.reports import render
from services.notifier.reports.compute import BreachSpan, Report, RollupRow, build_report
from tests.unit.notifier.reports.support import HOUR, MIN, NOV, make_agreement

ROWS = [
    RollupRow("availability", "customer=acme", {"customer": "acme"}, NOV, 90, 100),
    RollupRow("availability", "customer=<b>", {"customer": "<b>"}, NOV, 100, 100),
]
BREACHES = [
    BreachSpan("b1", "availability", {"customer": "acme"}, "page", NOV + MIN, NOV + 6 * MIN)
]


def report() -> Report:
    return build_report(
        make_agreement(), NOV, NOV + HOUR, now=NOV + 2 * HOUR, rollups=ROWS, breaches=BREACHES
    )


def test_json_has_the_period_and_every_objective() -> None:
    body = json.loads(render.to_json(report()))
    assert body["period"]["label"] == "2026-11"
    assert body["period"]["start_time"] == "2026-11-01T00:00:00.000Z"
    assert body["period"]["complete"] is True
    [availability] = [o for o in body["objectives"] if o["name"] == "availability"]
    assert availability["total"]["attainment"] == 0.95
    assert availability["total"]["breaches"][0]["duration_ms"] == 5 * MIN
    assert body["credit"] == {"percent": 10.0, "objective": "availability", "attainment": 0.95}
    assert body["termination"]["history"][0]["missed"] is True


def test_csv_has_a_row_per_objective_and_group() -> None:
    rows = list(csv.DictReader(io.StringIO(render.to_csv(report()))))
    keys = [(r["objective"], r["group"]) for r in rows]
    assert keys == [
        ("availability", ""),
        ("availability", "customer=<b>"),
        ("availability", "customer=acme"),
        ("latency", ""),
        ("heartbeat", ""),
        ("tickets", ""),
    ]
    total = rows[0]
    assert (total["good"], total["valid"], total["attainment"], total["met"]) == (
        "190",
        "200",
        "0.95",
        "false",
    )
    assert (total["credit_percent"], total["breaches"], total["breached_ms"]) == (
        "10.0",
        "1",
        str(5 * MIN),
    )
    assert rows[3]["measured"] == "false"
    assert rows[3]["note"] == "no valid events in the period"


def test_html_is_readable_and_escaped() -> None:
    page = render.to_html(report())
    assert "<h1>acme" in page
    assert "95.000 %" in page
    assert "customer=&lt;b&gt;" in page
    assert "customer=<b>" not in page
    assert "10 %" in page and "missed" in page
    assert "5m" in page  # the breach's duration


def test_html_times_are_the_agreements_local_time_and_it_prints() -> None:
    berlin = replace(report(), timezone="Europe/Berlin")
    page = render.to_html(berlin)
    start = render.local_time(berlin.start, "Europe/Berlin")
    assert start.endswith(("CET", "CEST")) and start in page
    assert render.local_time(0, "UTC") == "1970-01-01 00:00 UTC"
    assert "@media print" in page
