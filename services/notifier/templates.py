"""Message templates (Jinja2, sandboxed): defaults per channel, overridable per receiver.

Each channel declares its default templates by name (``title``, ``text``, ``html``,
``summary``); a receiver's ``spec.templates`` replaces any of them. Templates are
compiled once per source text and rendered in a sandbox (receiver templates are
configuration, not code) with ``StrictUndefined``, so a typo fails the delivery
(reason ``template``) instead of sending a half-empty message.

Variables (see :func:`template_context`): ``headline``, ``kind``, ``action``,
``severity``, ``agreement``, ``agreement_type``, ``objective``, ``objective_kind``
(ratio, quantile, deadline, freshness), ``service``, ``group``, ``windows`` (each
``window``, ``sli_text``, ``target_text`` in the objective's unit and ``text``, the
whole sentence: :mod:`services.notifier.values`), ``measure_text`` (every window's
``text``), ``budget_text``, ``since``, ``resolved_at``, ``for_whom``, ``status_url``,
``console_url``, ``ack_url``, ``ack`` (``by``, ``comment``) , ``step``, ``breach``
(the whole event as a mapping).
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from services.notifier import values
from services.notifier.message import GroupNotification, Notification
from shared.schemas import group_key
from shared.timeutil import to_rfc3339

TEXT = """\
{{ headline }}
What: {{ objective }} of {{ agreement_type }} {{ agreement }} (service {{ service }}\
{% if group %}, {{ group }}{% endif %})
How badly: {{ measure_text or 'n/a' }}\
{% if budget_text %}; error budget left {{ budget_text }}{% endif %}
Since: {{ since }}{% if resolved_at %}, resolved {{ resolved_at }}{% endif %}
For: {{ for_whom }}
{% if ack %}Acknowledged by {{ ack.by }}{% if ack.comment %}: {{ ack.comment }}{% endif %}
{% endif %}Next: {% if action == 'trigger' and ack_url %}investigate, then acknowledge: \
{{ ack_url }} ; {% endif %}console: {{ console_url }} ; status: {{ status_url }}"""

HTML = """\
<h2>{{ headline }}</h2>
<table>
<tr><th align="left">What</th><td>{{ objective }} of {{ agreement_type }} {{ agreement }}
 (service {{ service }}{% if group %}, {{ group }}{% endif %})</td></tr>
<tr><th align="left">How badly</th><td>{% for w in windows %}{{ w.text }}<br>{% endfor %}\
{% if budget_text %}error budget left {{ budget_text }}{% endif %}</td></tr>
<tr><th align="left">Since</th><td>{{ since }}{% if resolved_at %}, resolved {{ resolved_at }}
{% endif %}</td></tr>
<tr><th align="left">For</th><td>{{ for_whom }}</td></tr>
</table>
<p>{% if action == 'trigger' and ack_url %}<a href="{{ ack_url }}">Acknowledge</a> · {% endif %}
<a href="{{ console_url }}">Console</a> · <a href="{{ status_url }}">Status</a></p>"""

TITLE = "{{ headline }}"
SUMMARY = "{{ headline }}: {{ measure_text or 'n/a' }}"
"""A one-line summary with the SLI (PagerDuty's ``summary``)."""

# Group flushes (templates ``group_title``, ``group_text``, ``group_html``): the same
# variables per alert under ``alerts``, plus ``status``, ``firing``, ``resolved``
# (counts), ``group_labels``, ``common_labels``, ``group_key``.
GROUP_TITLE = """\
[{{ status | upper }}{% if status == 'firing' %}:{{ firing }}{% endif %}] \
{{ alerts | length }} SLA breach{% if alerts | length != 1 %}es{% endif %}\
{% for k, v in group_labels.items() %} {{ k }}={{ v }}{% endfor %}"""

GROUP_TEXT = """\
{{ headline }}
{% for a in alerts %}- {{ a.headline }} (since {{ a.since }}\
{% if a.resolved_at %}, resolved {{ a.resolved_at }}{% endif %}\
{% if a.ack %}, acknowledged by {{ a.ack.by }}{% endif %}): \
{{ a.measure_text or 'n/a' }}; console: {{ a.console_url }} ; status: {{ a.status_url }}\
{% if a.action == 'trigger' and a.ack_url %} ; acknowledge: {{ a.ack_url }}{% endif %}
{% endfor %}"""

GROUP_HTML = """\
<h2>{{ headline }}</h2>
<ul>
{% for a in alerts %}<li>{{ a.headline }} (since {{ a.since }}{% if a.resolved_at %}, resolved
 {{ a.resolved_at }}{% endif %}{% if a.ack %}, acknowledged by {{ a.ack.by }}{% endif %}):
 {% for w in a.windows %}{{ w.text }}<br>
 {% endfor %}<a href="{{ a.console_url }}">Console</a> · <a href="{{ a.status_url }}">Status</a>\
{% if a.action == 'trigger' and a.ack_url %}
 · <a href="{{ a.ack_url }}">Acknowledge</a>{% endif %}</li>
{% endfor %}</ul>"""
GROUP_DEFAULTS = {"group_title": GROUP_TITLE, "group_text": GROUP_TEXT, "group_html": GROUP_HTML}


def headline(note: Notification) -> str:
    breach = note.breach
    where = f"{breach.agreement.name}/{breach.objective}"
    if breach.group:
        where += " {" + group_key(breach.group) + "}"
    what = {
        "breach.opened": "SLA breach",
        "breach.updated": "SLA breach changed severity",
        "breach.resolved": "SLA breach resolved",
        "budget.exhausted": "error budget exhausted",
        "deadline.warning": "deadline approaching",
        "breach.acknowledged": "SLA breach acknowledged",
    }.get(note.kind, "SLA breach")
    if note.kind.startswith("repeat."):
        what = "SLA breach still open (reminder)"
    step = note.escalation_step
    if step is not None:
        what = f"SLA breach not acknowledged (escalation {step})"
    label = "RESOLVED" if note.action == "resolve" else breach.severity.upper()
    return f"[{label}] {what}: {where}"


def template_context(note: Notification) -> dict[str, Any]:
    breach = note.breach
    measure = values.measure_of(breach, note.objective)
    windows = values.window_texts(breach, measure)
    parties = [p for p in (breach.agreement.consumer, breach.agreement.provider) if p]
    for_whom = (
        f"{breach.agreement.consumer} (provider {breach.agreement.provider})"
        if breach.agreement.consumer and breach.agreement.provider
        else ", ".join(parties) or breach.agreement.name
    )
    return {
        "headline": headline(note),
        "kind": note.kind,
        "action": note.action,
        "severity": breach.severity,
        "agreement": breach.agreement.name,
        "agreement_type": breach.agreement.type,
        "objective": breach.objective,
        "service": breach.service,
        "group": group_key(breach.group),
        "objective_kind": measure.kind,
        "windows": [
            {
                "window": w.window,
                "sli_text": w.sli_text,
                "target_text": w.target_text,
                "text": w.text,
            }
            for w in windows
        ],
        "measure_text": "; ".join(w.text for w in windows),
        "budget_text": values.budget_text(breach.error_budget_remaining),
        "since": to_rfc3339(breach.opened_at),
        "resolved_at": None if breach.resolved_at is None else to_rfc3339(breach.resolved_at),
        "for_whom": for_whom,
        "status_url": note.status_url,
        "console_url": note.console_url,
        "ack_url": note.ack_url,
        "ack": None if note.ack is None else {"by": note.ack.by, "comment": note.ack.comment},
        "step": note.escalation_step,
        "breach": breach.model_dump(mode="json"),
    }


def group_context(
    group: GroupNotification, renderer: Renderer, overrides: Mapping[str, str]
) -> dict[str, Any]:
    """Variables of a group flush; ``headline`` is the rendered ``group_title``."""
    alerts = [template_context(a) for a in group.alerts]
    context: dict[str, Any] = {
        "status": group.status,
        "firing": sum(1 for a in group.alerts if a.action != "resolve"),
        "resolved": sum(1 for a in group.alerts if a.action == "resolve"),
        "alerts": alerts,
        "group_labels": dict(group.group_labels),
        "common_labels": group.common_labels,
        "group_key": group.group_key,
    }
    context["headline"] = renderer.render("group_title", GROUP_DEFAULTS, overrides, context)
    return context


class TemplateFailed(ValueError):
    """A template that does not compile or render (the message names which)."""


class Renderer:
    """Renders a channel's templates, a receiver's overrides first."""

    def __init__(self) -> None:
        self._text = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=False)
        self._html = SandboxedEnvironment(undefined=jinja2.StrictUndefined, autoescape=True)

    @functools.lru_cache(maxsize=512)  # noqa: B019 - one renderer per process, bounded
    def _compile(self, source: str, html: bool) -> jinja2.Template:
        return (self._html if html else self._text).from_string(source)

    def render(
        self,
        name: str,
        defaults: Mapping[str, str],
        overrides: Mapping[str, str],
        context: Mapping[str, Any],
    ) -> str:
        source = overrides.get(name, defaults[name])
        try:
            return self._compile(source, name.endswith("html")).render(context).strip()
        except jinja2.TemplateError as exc:
            raise TemplateFailed(f"template {name!r}: {exc}") from None
