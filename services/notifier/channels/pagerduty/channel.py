"""PagerDuty Events API v2: ``trigger`` / ``acknowledge`` / ``resolve`` one alert per
breach, ``dedup_key`` = the breach id (stable over the breach's whole lifecycle, so an
update re-triggers the same alert and the resolution closes it).

Severity: page → critical, ticket → error, warning → warning, info → info.
``custom_details`` carries the SLI per window (numbers, and ``sli_text`` in the
objective's unit), burn rates, error budget remaining, the group and the console link.
Template: ``summary`` (at most 1024 characters; by default the headline and the SLI).
PagerDuty answers 202; 400 (invalid event) is permanent, 429 and 5xx retriable.

A group flush is NOT merged: PagerDuty's ``dedup_key`` names one incident, so each
alert of the group is sent as its own event, in order, in one attempt (the first
failure fails the attempt; a retry resends them all, which PagerDuty deduplicates by
``dedup_key``).
"""

from __future__ import annotations

from typing import Any

import orjson

from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from services.notifier.channels.http import USER_AGENT, TemplatedChannel, post, prepare
from services.notifier.message import GroupNotification, Notification
from services.notifier.templates import SUMMARY, template_context
from shared.definitions.kinds.receivers import PagerDutyReceiverSpec
from shared.definitions.model import Receiver
from shared.timeutil import to_rfc3339

DEFAULTS = {"summary": SUMMARY}
SEVERITY = {"page": "critical", "ticket": "error", "warning": "warning", "info": "info"}
SUMMARY_LIMIT = 1024


def event(
    note: Notification, routing_key: str, summary: str, source: str, sli_text: str = ""
) -> dict[str, Any]:
    breach = note.breach
    body: dict[str, Any] = {
        "routing_key": routing_key,
        "event_action": note.action,
        "dedup_key": breach.id,
    }
    if note.action != "trigger":
        return body
    body["payload"] = {
        "summary": summary[:SUMMARY_LIMIT],
        "source": source,
        "severity": SEVERITY[breach.severity],
        "timestamp": to_rfc3339(breach.at),
        "component": breach.service,
        "group": breach.agreement.name,
        "class": breach.objective,
        "custom_details": {
            "breach_id": breach.id,
            "kind": note.kind,
            "agreement": breach.agreement.model_dump(),
            "objective": breach.objective,
            "group": breach.group,
            "sli": [w.model_dump() for w in breach.windows],
            "sli_text": sli_text,
            "burn_rates": breach.burn_rates,
            "error_budget_remaining": breach.error_budget_remaining,
            "opened_at": to_rfc3339(breach.opened_at),
            "console_url": note.console_url,
        },
    }
    links = [
        {"href": note.console_url, "text": "Breach in the slawatch console"},
        {"href": note.status_url, "text": "Breach status"},
    ]
    if note.ack_url:
        links.append({"href": note.ack_url, "text": "Acknowledge in slawatch"})
    body["links"] = links
    return body


class PagerDutyChannel(TemplatedChannel):
    """Delivers to ``spec.type: pagerduty`` receivers."""

    @property
    def name(self) -> str:
        return "pagerduty"

    async def deliver_group(self, group: GroupNotification, receiver: Receiver) -> DeliveryResult:
        total = 0
        status: int | None = None
        for note in group.alerts:
            result = await self.deliver(note, receiver)
            total += result.latency_ms
            status = result.status_code
        return DeliveryResult(status_code=status, latency_ms=total)

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, PagerDutyReceiverSpec):
            raise DeliveryError(
                Reason.UNSUPPORTED_CHANNEL, "not a pagerduty receiver", retriable=False
            )

        def build() -> tuple[str, bytes]:
            context = template_context(note)
            summary = self._renderer.render("summary", DEFAULTS, spec.templates, context)
            key = self._secrets.resolve(spec.routing_key)
            body = event(note, key, summary, spec.source, context["measure_text"])
            return self._secrets.url(spec.url), orjson.dumps(body)

        url, body = prepare(build)
        return await post(
            self._http,
            url,
            content=body,
            headers={"Content-Type": "application/json", "User-Agent": USER_AGENT},
            timeout_s=self._timeout_s,
            receiver_name=receiver.metadata.name,
        )
