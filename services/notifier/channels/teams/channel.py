"""Microsoft Teams: an Adaptive Card (1.4) message, as Teams incoming webhooks and
Power Automate "post to a channel when a webhook request is received" workflows take.

Templates: ``title`` (bold heading), ``text`` (the body); for a group flush
``group_title`` and ``group_text`` (one card listing every alert, one fact per alert).
Facts list the agreement, service, group, severity and SLI; actions open the ack link
, the console and the status API.
"""

from __future__ import annotations

from typing import Any

from services.notifier.channels.chat import ChatChannel
from services.notifier.message import GroupNotification, Notification
from shared.definitions.kinds.receivers import TeamsReceiverSpec

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
        facts.append({"title": f"SLI {window['window']}", "value": window["text"]})
    actions: list[dict[str, Any]] = []
    if note.action == "trigger" and note.ack_url:
        actions.append({"type": "Action.OpenUrl", "title": "Acknowledge", "url": note.ack_url})
    actions.append({"type": "Action.OpenUrl", "title": "Console", "url": note.console_url})
    actions.append({"type": "Action.OpenUrl", "title": "Status", "url": note.status_url})
    return _message(title, text, note.action == "resolve", facts, actions)


class TeamsChannel(ChatChannel):
    """Delivers to ``spec.type: teams`` receivers."""

    channel = "teams"
    spec_type = TeamsReceiverSpec

    def message(
        self, title: str, text: str, note: Notification, context: dict[str, Any]
    ) -> dict[str, Any]:
        return card(title, text, note, context)

    def group_message(self, headline: str, text: str, group: GroupNotification) -> dict[str, Any]:
        return group_card(headline, text, group)
