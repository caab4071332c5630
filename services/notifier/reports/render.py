"""A report as JSON (a dict), CSV (one row per objective and per group) or HTML (pure).

Times in JSON are epoch ms plus RFC 3339 text; fractions stay fractions (0.9991), the
HTML page shows percentages. The HTML is rendered by Jinja2 with autoescape on: names
and group values come from definitions and events.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import jinja2

from services.notifier.reports.compute import ObjectiveReport, Report, SeriesReport
from shared.timeutil import format_duration, to_rfc3339

CSV_COLUMNS = (
    "agreement",
    "period",
    "objective",
    "kind",
    "group",
    "measured",
    "good",
    "valid",
    "excluded_valid",
    "attainment",
    "target",
    "met",
    "error_budget_used",
    "credit_percent",
    "breaches",
    "breached_ms",
    "note",
)


def as_dict(report: Report) -> dict[str, Any]:
    """The JSON body: the report's fields, with RFC 3339 twins of the period bounds."""
    body = asdict(report)
    body["period"] = {
        "label": report.label,
        "every": report.every,
        "timezone": report.timezone,
        "start": report.start,
        "end": report.end,
        "start_time": to_rfc3339(report.start),
        "end_time": to_rfc3339(report.end),
        "complete": report.complete,
    }
    for key in ("label", "every", "timezone", "start", "end", "complete"):
        del body[key]
    body["notes"] = list(report.notes)
    return body


def _group_text(group: dict[str, Any] | Any) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(dict(group).items()))


def _csv_row(report: Report, o: ObjectiveReport, s: SeriesReport) -> list[object]:
    def blank(value: object) -> object:
        return "" if value is None else value

    return [
        report.agreement,
        report.label,
        o.name,
        o.kind,
        _group_text(s.group),
        "true" if o.measured else "false",
        blank(s.good),
        blank(s.valid),
        blank(s.excluded_valid),
        blank(s.attainment),
        blank(o.target),
        "" if s.met is None else ("true" if s.met else "false"),
        blank(s.error_budget_used),
        s.credit_percent,
        len(s.breaches),
        s.breached_ms,
        o.reason or "",
    ]


def to_csv(report: Report) -> str:
    """One row per objective (empty ``group``: all groups) and one per group."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for o in report.objectives:
        writer.writerow(_csv_row(report, o, o.total))
        for series in o.groups:
            writer.writerow(_csv_row(report, o, series))
    return out.getvalue()


def to_json(report: Report) -> str:
    return json.dumps(as_dict(report), indent=2) + "\n"


FORMATS = ("json", "csv", "html")


def render(report: Report, fmt: str) -> str:
    """The report in ``fmt``, one of :data:`FORMATS`."""
    if fmt == "csv":
        return to_csv(report)
    if fmt == "html":
        return to_html(report)
    return to_json(report)


def _percent(value: float | None, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    return f"{value * 100:.{digits}f} %"


def _duration(ms: int) -> str:
    if ms <= 0:
        return "0s"
    # Round to seconds first: durations are event times in ms, the page reads better.
    return format_duration(ms - ms % 1000) if ms >= 1000 else f"{ms}ms"


_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<title>{{ r.agreement }} · {{ r.label }} · slawatch report</title>
<style>
body{font:14px/1.4 system-ui,sans-serif;margin:2em;color:#222}
table{border-collapse:collapse;margin:.5em 0 1.5em}
td,th{border:1px solid #ccc;padding:.25em .6em;text-align:left}
th{background:#f4f4f4}.missed{color:#a00;font-weight:bold}.met{color:#070}
.muted{color:#777}
@media print{body{margin:0;font-size:11pt;color:#000}table{page-break-inside:auto}
tr{page-break-inside:avoid}h2{page-break-after:avoid}th{background:#eee}}
</style></head><body>
<h1>{{ r.agreement }} <span class="muted">({{ r.type }})</span></h1>
<p>Period <strong>{{ r.label }}</strong> ({{ r.every }}, {{ r.timezone }}):
{{ time(r.start) }} to {{ time(r.end) }}
<span class="muted">({{ utc(r.start) }} to {{ utc(r.end) }})</span>{% if not r.complete %},
<em>in progress</em> as of {{ time(r.now) }}{% endif %}.
{% if r.provider %}Provider {{ r.provider }}.{% endif %}
{% if r.consumer %}Consumer {{ r.consumer }}.{% endif %}</p>
<h2>Summary</h2>
<table>
<tr><th>Period</th><td>{% if r.missed is none %}not measured{% elif r.missed %}
<span class="missed">missed</span>{% else %}<span class="met">met</span>{% endif %}</td></tr>
<tr><th>Service credit owed</th><td>{{ "%g"|format(r.credit.percent) }} %
{% if r.credit.objective %}({{ r.credit.objective }} at
{{ percent(r.credit.attainment) }}){% endif %}</td></tr>
<tr><th>Consecutive missed periods</th><td>{{ r.termination.consecutive_missed_periods }}
{% if r.termination.rule %} of {{ r.termination.rule }} allowed before termination risk
{% if r.termination.at_risk %}<span class="missed">: termination risk</span>{% endif %}
{% endif %}</td></tr>
</table>
<h2>Objectives</h2>
<table>
<tr><th>Objective</th><th>Kind</th><th>Group</th><th>Target</th><th>Attainment</th>
<th>Status</th><th>Error budget used</th><th>Credit</th><th>Breaches</th>
<th>Breached time</th></tr>
{% for o in r.objectives %}{% for s in [o.total] + list(o.groups) %}
<tr><td>{{ o.name }}</td><td>{{ o.kind }}</td>
<td>{{ group(s.group) or ("all" if o.groups else "") }}</td><td>{{ o.target_text }}</td>
<td>{{ percent(s.attainment) }}</td>
<td>{% if not o.measured %}<span class="muted">{{ o.reason }}</span>
{% elif s.met is none %}n/a{% elif s.met %}<span class="met">met</span>
{% else %}<span class="missed">missed</span>{% endif %}</td>
<td>{{ percent(s.error_budget_used, 1) }}</td>
<td>{{ "%g"|format(s.credit_percent) }} %</td><td>{{ s.breaches|length }}</td>
<td>{{ duration(s.breached_ms) }}</td></tr>
{% endfor %}{% endfor %}
</table>
<h2>Breaches</h2>
{% set ns = namespace(any=false) %}
<table>
<tr><th>Objective</th><th>Group</th><th>Severity</th><th>Opened</th><th>Resolved</th>
<th>Duration in period</th></tr>
{% for o in r.objectives %}{% for b in o.total.breaches %}{% set ns.any = true %}
<tr><td>{{ o.name }}</td><td>{{ group(b.group) }}</td><td>{{ b.severity }}</td>
<td>{{ time(b.opened_at) }}</td>
<td>{% if b.resolved_at is none %}open{% else %}{{ time(b.resolved_at) }}{% endif %}</td>
<td>{{ duration(b.duration_ms) }}{% if b.open_at_end %} (still open){% endif %}</td></tr>
{% endfor %}{% endfor %}
</table>
{% if not ns.any %}<p class="muted">No breaches in this period.</p>{% endif %}
{% if r.tree %}
<h2>Underpinning agreements</h2>
{% if r.tree.underpinned_by %}
<table>
<tr><th>Agreement</th><th>Type</th><th>Provider</th><th>Objective</th><th>Attainment</th>
<th>Target</th><th>Status</th><th>Credit</th></tr>
{% for u in r.tree.underpinned_by %}{% for o in u.objectives %}
<tr><td>{{ u.agreement }}</td><td>{{ u.type }}</td><td>{{ u.provider or "" }}</td>
<td>{{ o.objective }}</td><td>{{ percent(o.attainment) }}</td>
<td>{{ percent(o.target) if o.target is not none else "" }}</td>
<td>{% if o.met is none %}n/a{% elif o.met %}<span class="met">met</span>
{% else %}<span class="missed">missed</span>{% endif %}</td>
<td>{{ "%g"|format(u.credit_percent) }} %</td></tr>
{% endfor %}{% endfor %}
</table>
<p>Credit owed to the customer: {{ "%g"|format(r.tree.credit_owed_to_customer) }} %.
{% for c in r.tree.credits_owed_by_suppliers %}Owed by {{ c.provider or c.agreement }}
({{ c.agreement }}): {{ "%g"|format(c.percent) }} %. {% endfor %}</p>
{% if r.tree.attributions %}
<table>
<tr><th>SLA breach</th><th>Objective</th><th>Underpinning agreement</th>
<th>Its breach</th><th>Its objective</th><th>Overlap</th></tr>
{% for a in r.tree.attributions %}
<tr><td>{{ a.breach[:12] }}</td><td>{{ a.objective }}</td><td>{{ a.agreement }}</td>
<td>{{ a.underpinning_breach[:12] }}</td><td>{{ a.underpinning_objective }}</td>
<td>{{ duration(a.overlap_ms) }}</td></tr>
{% endfor %}
</table>
{% else %}<p class="muted">No underpinning breach overlapped a breach of this agreement.</p>
{% endif %}
{% else %}<p class="muted">No OLA or UC names this agreement in <code>underpins</code>.</p>
{% endif %}
{% endif %}
<h2>Recent periods</h2>
<table><tr><th>Period</th><th>Status</th></tr>
{% for p in r.termination.history %}<tr><td>{{ p.label }}</td><td>
{% if p.missed is none %}not measured{% elif p.missed %}missed{% else %}met{% endif %}
</td></tr>{% endfor %}
</table>
{% for note in r.notes %}<p class="muted">{{ note }}</p>{% endfor %}
</body></html>
"""


def local_time(ms: int, timezone: str) -> str:
    """A time as the agreement's parties read it: local wall time with the zone's
    abbreviation, e.g. ``2026-11-01 00:00 CET`` (UTC: ``… 00:00 UTC``)."""
    at = datetime.fromtimestamp(ms / 1000, tz=ZoneInfo(timezone))
    return at.strftime("%Y-%m-%d %H:%M ") + (at.tzname() or timezone)


def _environment(timezone: str = "UTC") -> jinja2.Environment:
    env = jinja2.Environment(autoescape=True, undefined=jinja2.StrictUndefined)
    env.globals.update(
        time=lambda ms: local_time(ms, timezone),
        utc=to_rfc3339,
        percent=_percent,
        duration=_duration,
        group=_group_text,
        list=list,
    )
    return env


def to_html(report: Report) -> str:
    """A readable page; every value from definitions or events is escaped."""
    return _environment(report.timezone).from_string(_PAGE).render(r=report)
