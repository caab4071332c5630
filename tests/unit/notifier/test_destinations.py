"""Outbound destination policy: private and link-local networks denied unless allowed."""

from __future__ import annotations

from ipaddress import ip_network

import httpx
import pytest

from services.notifier.channels.base import DeliveryError, Reason
from services.notifier.channels.destinations import DestinationPolicy
from services.notifier.message import simple
from tests.unit.notifier.support import make_breach
from tests.unit.notifier.test_channel_conformance import HTTP_CASES, ChannelCase


@pytest.mark.parametrize(
    ("address", "default", "with_allow"),
    [
        ("127.0.0.1", True, True),
        ("::1", True, True),
        ("93.184.216.34", True, True),
        ("10.1.2.3", False, True),
        ("10.9.0.1", False, False),
        ("172.16.5.4", False, False),
        ("192.168.1.1", False, False),
        ("169.254.169.254", False, False),
        ("100.64.0.1", False, False),
        ("0.0.0.0", False, False),
        ("fe80::1", False, False),
        ("fd00::1", False, False),
        ("::ffff:10.1.2.3", False, True),
        ("::ffff:192.168.0.1", False, False),
    ],
)
def test_permits(address: str, default: bool, with_allow: bool) -> None:
    assert DestinationPolicy().permits(address) is default
    assert DestinationPolicy.allowing(["10.1.0.0/16"]).permits(address) is with_allow


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://10.0.0.7/x"])
@pytest.mark.parametrize("case", HTTP_CASES, ids=lambda c: c.name)
async def test_http_channels_refuse_denied_destinations(case: ChannelCase, url: str) -> None:
    async with httpx.AsyncClient() as http:
        with pytest.raises(DeliveryError) as caught:
            await case.channel(http, 1_000).deliver(simple(make_breach()), case.receiver(url))
    assert (caught.value.reason, caught.value.retriable) == (Reason.DENIED, False)


async def test_names_are_resolved() -> None:
    await DestinationPolicy().check("http://localhost:9/x", "r")  # loopback: allowed
    strict = DestinationPolicy(denied=(*DestinationPolicy().denied, ip_network("127.0.0.0/8")))
    with pytest.raises(DeliveryError):
        await strict.check("http://localhost/", "r")
