"""Slack incoming webhook: a Block Kit message (header, text, context, link buttons).

Templates: ``title`` (header block and notification fallback ``text``), ``text``
(the section, Slack mrkdwn); for a group flush ``group_title`` and ``group_text``
(one message listing every alert of the group). The webhook URL is a secret and may be a reference.
Slack answers 200 ``ok``; its 4xx (``invalid_payload``, ``no_service``, 410
``channel_is_archived``) are permanent, 429 and 5xx retriable.
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
from shared.definitions.kinds.receivers import SlackReceiverSpec
from shared.definitions.model import Receiver

DEFAULTS = {"title": TITLE, "text": TEXT}
HEADER_LIMIT = 150
SECTION_LIMIT = 3000


def group_blocks(title: str, text: str, group: GroupNotification) -> dict[str, Any]:
    return {
        "text": title[:HEADER_LIMIT],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:HEADER_LIMIT]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}},
            {
                "type": "context",
                "elements": [
                    {
                        "type": "mrkdwn",
                        "text": ", ".join(f"breach `{a.breach.id}`" for a in group.alerts)[
                            :SECTION_LIMIT
                        ],
                    }
                ],
            },
        ],
    }


def blocks(title: str, text: str, note: Notification) -> dict[str, Any]:
    buttons: list[dict[str, Any]] = []
    if note.action == "trigger" and note.ack_url:
        buttons.append(
            {
                "type": "button",
                "text": {"type": "plain_text", "text": "Acknowledge"},
                "url": note.ack_url,
                "style": "danger",
            }
        )
    buttons.append(
        {"type": "button", "text": {"type": "plain_text", "text": "Status"}, "url": note.status_url}
    )
    return {
        "text": title[:HEADER_LIMIT],
        "blocks": [
            {"type": "header", "text": {"type": "plain_text", "text": title[:HEADER_LIMIT]}},
            {"type": "section", "text": {"type": "mrkdwn", "text": text[:SECTION_LIMIT]}},
            {
                "type": "context",
                "elements": [{"type": "mrkdwn", "text": f"breach `{note.breach.id}`"}],
            },
            {"type": "actions", "elements": buttons},
        ],
    }


class SlackChannel:
    """Delivers to ``spec.type: slack`` receivers."""

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
        return "slack"

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, SlackReceiverSpec):
            raise DeliveryError(Reason.UNSUPPORTED_CHANNEL, "not a slack receiver", retriable=False)

        def build() -> tuple[str, bytes]:
            context = template_context(note)
            title = self._renderer.render("title", DEFAULTS, spec.templates, context)
            text = self._renderer.render("text", DEFAULTS, spec.templates, context)
            return self._secrets.url(spec.url), orjson.dumps(blocks(title, text, note))

        url, body = prepare(build)
        return await self._post(url, body, note.idempotency_key, receiver)

    async def deliver_group(self, group: GroupNotification, receiver: Receiver) -> DeliveryResult:
        spec = receiver.spec
        if not isinstance(spec, SlackReceiverSpec):
            raise DeliveryError(Reason.UNSUPPORTED_CHANNEL, "not a slack receiver", retriable=False)

        def build() -> tuple[str, bytes]:
            context = group_context(group, self._renderer, spec.templates)
            text = self._renderer.render("group_text", GROUP_DEFAULTS, spec.templates, context)
            return self._secrets.url(spec.url), orjson.dumps(
                group_blocks(context["headline"], text, group)
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
