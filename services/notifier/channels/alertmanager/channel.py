"""Prometheus Alertmanager: POST ``[alert]`` to ``<url>/api/v2/alerts``.

Labels (identify the alert; Alertmanager groups and dedups on them): ``alertname``
(``SLABreach``), ``agreement``, ``objective``, ``service``, ``severity``,
``breach_id``, and the breach's group attributes (a name that collides with one of
those is prefixed ``group_``). Annotations: ``summary`` and ``description``
(templates), ``sli`` (the SLI against the target in the objective's unit),
``console_url``, ``status_url``, ``ack_url``. ``startsAt`` is the opening; a firing alert
ends ``firingTtl`` after the event (Alertmanager would otherwise resolve it after its
``resolve_timeout``, and slawatch does not re-push), a resolution at ``resolved_at``.
Alertmanager answers 200; 400 is permanent, 5xx retriable. A group flush posts every
alert of the group in one request (Alertmanager then groups them by its own routes).
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from services.notifier.channels.http import USER_AGENT, TemplatedChannel, post, prepare
from services.notifier.message import GroupNotification, Notification
from services.notifier.templates import TEXT, TITLE, template_context
from shared.definitions.kinds.receivers import AlertmanagerReceiverSpec
from shared.definitions.model import Receiver
from shared.timeutil import parse_duration_ms, to_rfc3339

DEFAULTS = {"summary": TITLE, "description": TEXT}
ALERTNAME = "SLABreach"
_LABEL_NAME = re.compile(r"[^a-zA-Z0-9_]")
RESERVED = {"alertname", "agreement", "objective", "service", "severity", "breach_id"}


def alert(
    note: Notification,
    spec: AlertmanagerReceiverSpec,
    summary: str,
    description: str,
    sli_text: str = "",
) -> dict[str, Any]:
    breach = note.breach
    labels = {
        "alertname": ALERTNAME,
        "agreement": breach.agreement.name,
        "objective": breach.objective,
        "service": breach.service,
        "severity": breach.severity,
        "breach_id": breach.id,
    }
    for key, value in breach.group.items():
        name = _LABEL_NAME.sub("_", key)
        if name in RESERVED or not name or name[0].isdigit():
            name = f"group_{name}"
        labels[name] = value
    annotations = {
        "summary": summary,
        "description": description,
        "sli": sli_text,
        "console_url": note.console_url,
        "status_url": note.status_url,
    }
    if note.ack_url:
        annotations["ack_url"] = note.ack_url
    if note.action == "resolve":
        ends = breach.resolved_at if breach.resolved_at is not None else breach.at
    else:
        ends = breach.at + parse_duration_ms(spec.firing_ttl)
    body: dict[str, Any] = {
        "labels": labels,
        "annotations": annotations,
        "startsAt": to_rfc3339(breach.opened_at),
        "endsAt": to_rfc3339(ends),
    }
    body["generatorURL"] = spec.generator_url or note.status_url
    return body


class AlertmanagerChannel(TemplatedChannel):
    """Delivers to ``spec.type: alertmanager`` receivers."""

    @property
    def name(self) -> str:
        return "alertmanager"

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        return await self._push((note,), receiver)

    async def deliver_group(self, group: GroupNotification, receiver: Receiver) -> DeliveryResult:
        return await self._push(group.alerts, receiver)

    async def _push(self, notes: tuple[Notification, ...], receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, AlertmanagerReceiverSpec):
            raise DeliveryError(
                Reason.UNSUPPORTED_CHANNEL, "not an alertmanager receiver", retriable=False
            )

        def one(note: Notification) -> dict[str, Any]:
            context = template_context(note)
            summary = self._renderer.render("summary", DEFAULTS, spec.templates, context)
            description = self._renderer.render("description", DEFAULTS, spec.templates, context)
            return alert(note, spec, summary, description, context["measure_text"])

        def build() -> tuple[str, bytes, dict[str, str]]:
            headers = {"Content-Type": "application/json", "User-Agent": USER_AGENT}
            headers.update(spec.headers)
            headers.update({k: self._secrets.resolve(v) for k, v in spec.secret_headers.items()})
            url = self._secrets.url(spec.url)
            return url, orjson.dumps([one(note) for note in notes]), headers

        url, body, headers = prepare(build)
        return await post(
            self._http,
            url.rstrip("/") + "/api/v2/alerts",
            content=body,
            headers=headers,
            timeout_s=self._timeout_s,
            receiver_name=receiver.metadata.name,
        )
