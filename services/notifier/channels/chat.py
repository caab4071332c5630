"""The delivery Slack and Teams share.

:class:`ChatChannel`: render ``title`` and
``text`` (or ``group_text`` for a group flush), shape them into the service's message
(:meth:`ChatChannel.message`, :meth:`ChatChannel.group_message`) and POST the JSON to
the webhook URL, which is a secret and may be a reference.
"""

from __future__ import annotations

from typing import Any, ClassVar

import orjson

from services.notifier.channels.base import DeliveryError, DeliveryResult, Reason
from services.notifier.channels.http import TemplatedChannel, post_json, prepare
from services.notifier.message import GroupNotification, Notification
from services.notifier.templates import (
    GROUP_DEFAULTS,
    TEXT,
    TITLE,
    group_context,
    template_context,
)
from shared.definitions.kinds.receivers import SlackReceiverSpec, TeamsReceiverSpec
from shared.definitions.model import Receiver

DEFAULTS = {"title": TITLE, "text": TEXT}


class ChatChannel(TemplatedChannel):
    """A chat incoming webhook; subclasses name the receiver type and shape messages."""

    channel: ClassVar[str]
    spec_type: ClassVar[type[SlackReceiverSpec] | type[TeamsReceiverSpec]]

    @property
    def name(self) -> str:
        return self.channel

    def message(
        self, title: str, text: str, note: Notification, context: dict[str, Any]
    ) -> dict[str, Any]:
        raise NotImplementedError

    def group_message(self, headline: str, text: str, group: GroupNotification) -> dict[str, Any]:
        raise NotImplementedError

    def _spec(self, receiver: Receiver) -> SlackReceiverSpec | TeamsReceiverSpec:
        spec = receiver.spec
        if not isinstance(spec, self.spec_type):
            raise DeliveryError(
                Reason.UNSUPPORTED_CHANNEL, f"not a {self.channel} receiver", retriable=False
            )
        return spec

    async def deliver(self, note: Notification, receiver: Receiver) -> DeliveryResult:
        spec = self._spec(receiver)

        def build() -> tuple[str, bytes]:
            context = template_context(note)
            title = self._renderer.render("title", DEFAULTS, spec.templates, context)
            text = self._renderer.render("text", DEFAULTS, spec.templates, context)
            body = self.message(title, text, note, context)
            return self._secrets.url(spec.url), orjson.dumps(body)

        url, body = prepare(build)
        return await self._post(url, body, note.idempotency_key, receiver)

    async def deliver_group(self, group: GroupNotification, receiver: Receiver) -> DeliveryResult:
        spec = self._spec(receiver)

        def build() -> tuple[str, bytes]:
            context = group_context(group, self._renderer, spec.templates)
            text = self._renderer.render("group_text", GROUP_DEFAULTS, spec.templates, context)
            body = self.group_message(context["headline"], text, group)
            return self._secrets.url(spec.url), orjson.dumps(body)

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
        )
