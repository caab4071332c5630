"""Slack incoming webhook: a Block Kit message (header, text, context, link buttons).

Buttons: Acknowledge (while open and unacknowledged), Console, Status.
Templates: ``title`` (header block and notification fallback ``text``), ``text``
(the section, Slack mrkdwn); for a group flush ``group_title`` and ``group_text``
(one message listing every alert of the group). The webhook URL is a secret and may be a reference.
Slack answers 200 ``ok``; its 4xx (``invalid_payload``, ``no_service``, 410
``channel_is_archived``) are permanent, 429 and 5xx retriable.
"""

from __future__ import annotations

from typing import Any

from services.notifier.channels.chat import ChatChannel
from services.notifier.message import GroupNotification, Notification
from shared.definitions.kinds.receivers import SlackReceiverSpec

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
        {
            "type": "button",
            "text": {"type": "plain_text", "text": "Console"},
            "url": note.console_url,
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


class SlackChannel(ChatChannel):
    """Delivers to ``spec.type: slack`` receivers."""

    channel = "slack"
    spec_type = SlackReceiverSpec

    def message(
        self, title: str, text: str, note: Notification, context: dict[str, Any]
    ) -> dict[str, Any]:
        return blocks(title, text, note)

    def group_message(self, headline: str, text: str, group: GroupNotification) -> dict[str, Any]:
        return group_blocks(headline, text, group)
