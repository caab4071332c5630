"""Delivery channels, one folder per channel; :func:`build_channels` wires them.

Adding a channel: a folder with its delivery code, a ``Receiver`` spec type in
``shared.definitions.model``, and an entry here.
"""

from __future__ import annotations

import httpx

from services.notifier.channels.base import Channel
from services.notifier.channels.webhook import WebhookChannel


def build_channels(http: httpx.AsyncClient, timeout_ms: int) -> dict[str, Channel]:
    """Every channel by the receiver ``spec.type`` it serves."""
    channels: list[Channel] = [WebhookChannel(http, timeout_ms=timeout_ms)]
    return {channel.name: channel for channel in channels}
