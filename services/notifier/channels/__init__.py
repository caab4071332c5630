"""Delivery channels, one folder per channel; :func:`build_channels` wires them.

Adding a channel: a folder with its delivery code and default templates, a
``Receiver`` spec type in ``shared.definitions.kinds.receivers``, an entry here, and a
case in the shared conformance suite (tests/unit/notifier/test_channel_conformance.py).
"""

from __future__ import annotations

import httpx

from services.notifier.channels.alertmanager import AlertmanagerChannel
from services.notifier.channels.base import Channel
from services.notifier.channels.destinations import Outbound
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.pagerduty import PagerDutyChannel
from services.notifier.channels.slack import SlackChannel
from services.notifier.channels.teams import TeamsChannel
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.secrets import Secrets
from services.notifier.templates import Renderer
from shared.timeutil import Clock, wall_clock_ms


def build_channels(
    http: httpx.AsyncClient,
    timeout_ms: int,
    secrets: Secrets | None = None,
    clock: Clock = wall_clock_ms,
    outbound: Outbound | None = None,
) -> dict[str, Channel]:
    """Every channel by the receiver ``spec.type`` it serves.

    Destinations: HTTP channels are checked by ``http``'s transport (give a client
    from :func:`~services.notifier.channels.destinations.outbound_client`); email,
    which has no such client, by ``outbound`` (the default denies every internal
    address)."""
    secrets = secrets or Secrets({})
    renderer = Renderer()
    channels: list[Channel] = [
        WebhookChannel(
            http, timeout_ms=timeout_ms, secrets=secrets, clock=clock, renderer=renderer
        ),
        SlackChannel(http, timeout_ms=timeout_ms, secrets=secrets, renderer=renderer),
        TeamsChannel(http, timeout_ms=timeout_ms, secrets=secrets, renderer=renderer),
        PagerDutyChannel(http, timeout_ms=timeout_ms, secrets=secrets, renderer=renderer),
        AlertmanagerChannel(http, timeout_ms=timeout_ms, secrets=secrets, renderer=renderer),
        EmailChannel(timeout_ms=timeout_ms, secrets=secrets, renderer=renderer, outbound=outbound),
    ]
    return {channel.name: channel for channel in channels}
