"""Microsoft Teams: an Adaptive Card (1.4) message, as Teams incoming webhooks and
Power Automate "post to a channel when a webhook request is received" workflows take.

Templates: ``title`` (bold heading), ``text`` (the body); for a group flush
``group_title`` and ``group_text`` (one card listing every alert, one fact per alert).
Facts list the agreement, service, group, severity and SLI; actions open the ack link
and the status API.
"""

from __future__ import annotations

from typing import Any

import httpx
import orjson

from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from services.notifier.channels.destinations import DestinationPolicy
from services.notifier.channels.http import post_json, prepare
from services.notifier.message import GroupNotification, Notification
from services.notifier.secrets import Secrets
from services.notifier.templates import (
    GROUP_DEFAULTS,
    TEXT,
    TITLE,
    Renderer,
    group_context,
    template_context,
)
from shared.definitions.kinds.receivers import TeamsReceiverSpec
from shared.definitions.model import Receiver

DEFAULTS = {"title": TITLE, "text": TEXT}
CARD_TYPE = "application/vnd.microsoft.card.adaptive"


def _message(
    title: str,
    text: str,
    resolved: bool,
    facts: list[dict[str, Any]],
    actions: list[dict[str, Any]],
) -> dict[str, Any]:
    content = {
        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
        "type": "AdaptiveCard",
        "version": "1.4",
        "body": [
            {
                "type": "TextBlock",
                "text": title,
                "weight": "Bolder",
                "size": "Medium",
                "wrap": True,
                "color": "Good" if resolved else "Attention",
            },
            {"type": "TextBlock", "text": text, "wrap": True},
            {"type": "FactSet", "facts": facts},
        ],
        "actions": actions,
    }
    return {
        "type": "message",
        "attachments": [{"contentType": CARD_TYPE, "contentUrl": None, "content": content}],
    }


def group_card(title: str, text: str, group: GroupNotification) -> dict[str, Any]:
    facts = [
        {
            "title": "RESOLVED" if a.action == "resolve" else a.breach.severity.upper(),
            "value": f"{a.breach.agreement.name}/{a.breach.objective} ({a.breach.id})",
        }
        for a in group.alerts
    ]
    return _message(title, text, group.status == "resolved", facts, [])


def card(title: str, text: str, note: Notification, context: dict[str, Any]) -> dict[str, Any]:
    facts = [
        {"title": "Agreement", "value": f"{context['agreement_type']} {context['agreement']}"},
        {"title": "Service", "value": context["service"]},
        {"title": "Severity", "value": context["severity"]},
    ]
    if context["group"]:
        facts.append({"title": "Group", "value": context["group"]})
    for window in context["windows"]:
        facts.append(
            {
                "title": f"SLI {window['window']}",
                "value": f"{window['sli_text']} (target {window['target_text']})",
            }
        )
    actions: list[dict[str, Any]] = []
    if note.action == "trigger" and note.ack_url:
        actions.append({"type": "Action.OpenUrl", "title": "Acknowledge", "url": note.ack_url})
    actions.append({"type": "Action.OpenUrl", "title": "Status", "url": note.status_url})
    return _message(title, text, note.action == "resolve", facts, actions)


class TeamsChannel:
    """Delivers to ``spec.type: teams`` receivers."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout_ms: int,
        secrets: Secrets,
        renderer: Renderer,
        destinations: DestinationPolicy | None = None,
    ) -> None:
        self._destinations = destinations
        self._http = http
        self._timeout_s = timeout_ms / 1000
        self._secrets = secrets
        self._renderer = renderer

    @property
    def name(self) -> str:
        return "teams"

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, TeamsReceiverSpec):
            raise DeliveryError(Reason.UNSUPPORTED_CHANNEL, "not a teams receiver", retriable=False)

        def build() -> tuple[str, bytes]:
            context = template_context(note)
            title = self._renderer.render("title", DEFAULTS, spec.templates, context)
            text = self._renderer.render("text", DEFAULTS, spec.templates, context)
            return self._secrets.url(spec.url), orjson.dumps(card(title, text, note, context))

        url, body = prepare(build)
        return await self._post(url, body, note.idempotency_key, receiver)

    async def deliver_group(self, group: GroupNotification, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, TeamsReceiverSpec):
            raise DeliveryError(Reason.UNSUPPORTED_CHANNEL, "not a teams receiver", retriable=False)

        def build() -> tuple[str, bytes]:
            context = group_context(group, self._renderer, spec.templates)
            text = self._renderer.render("group_text", GROUP_DEFAULTS, spec.templates, context)
            return self._secrets.url(spec.url), orjson.dumps(
                group_card(context["headline"], text, group)
            )

        url, body = prepare(build)
        return await self._post(url, body, group.idempotency_key, receiver)

    async def _post(
        self, url: str, body: bytes, idempotency_key: str, receiver: Receiver
    ) -> DeliveryResult:
        return await post_json(
            self._http,
            url,
            body,
            idempotency_key,
            timeout_s=self._timeout_s,
            receiver_name=receiver.metadata.name,
            destinations=self._destinations,
        )
