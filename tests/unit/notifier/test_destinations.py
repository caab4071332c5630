"""Outbound destinations: the policy (table) and its application on the connection
(real loopback servers counting the connections they accept)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from ipaddress import ip_address

import pytest

from services.notifier.channels.base import DeliveryError, Reason
from services.notifier.channels.destinations import Outbound, outbound_client
from services.notifier.channels.email import EmailChannel
from services.notifier.channels.webhook import WebhookChannel
from services.notifier.message import simple
from services.notifier.secrets import Secrets
from services.notifier.templates import Renderer
from shared.outbound import LOOPBACK, Allow, address_denial, host_denial
from tests.unit.notifier.support import make_breach
from tests.unit.notifier.test_channel_conformance import (
    HTTP_CASES,
    SECRETS,
    ChannelCase,
    email_receiver,
    webhook_receiver,
)

DENIED_HOSTS = [
    # IPv4 ranges
    "0.0.0.0",
    "0.1.2.3",
    "10.0.0.1",
    "100.64.0.1",
    "127.0.0.1",
    "127.1",
    "169.254.169.254",
    "172.16.5.4",
    "192.0.0.8",
    "192.0.2.1",
    "192.88.99.1",
    "192.168.1.1",
    "198.18.0.1",
    "198.19.255.254",
    "198.51.100.7",
    "203.0.113.9",
    "224.0.0.1",
    "239.255.255.250",
    "240.0.0.1",
    "255.255.255.255",
    # the metadata address in other spellings
    "2852039166",
    "0251.0376.0251.0376",
    "0xa9fea9fe",
    "0xA9.0xFE.0xA9.0xFE",
    "169.254.43518",
    "169.16689662",
    "169.254.169.254.",
    # IPv6 ranges and IPv4 inside IPv6
    "::",
    "[::]",
    "::1",
    "[::ffff:169.254.169.254]",
    "::ffff:127.0.0.1",
    "::ffff:0:a9fe:a9fe",
    "::a9fe:a9fe",
    "64:ff9b::a9fe:a9fe",
    "64:ff9b::808:808",
    "64:ff9b:1::a9fe:a9fe",
    "100::1",
    "2001:0:4136:e378:8000:63bf:3fff:fdd2",
    "2001:db8::1",
    "2001:2::1",
    "2002:a9fe:a9fe::1",
    "2002:808:808::1",
    "3fff::1",
    "fc00::1",
    "fd12:3456::1",
    "fe80::1",
    "fe80::1%eth0",
    "fec0::1",
    "ff02::1",
    # internal names
    "localhost",
    "LOCALHOST.",
    "api.localhost",
    "metadata.google.internal",
    "printer.local",
    "router.home.arpa",
    "intranet",
    # numeric-looking, but no address every parser reads alike
    "1.2.3.08",
    "1.2.3.4.5",
    "256.1.1.1",
    "0x100000000",
    "1..2",
]
ALLOWED_HOSTS = ["93.184.216.34", "8.8.8.8", "2606:4700::1111", "hooks.example.com", "a.b.c"]


@pytest.mark.parametrize("host", DENIED_HOSTS)
def test_denied_hosts(host: str) -> None:
    assert host_denial(host) is not None


@pytest.mark.parametrize("host", ALLOWED_HOSTS)
def test_allowed_hosts(host: str) -> None:
    assert host_denial(host) is None


@pytest.mark.parametrize(
    ("host", "allow", "denied"),
    [
        ("127.0.0.1", LOOPBACK, False),
        ("::1", LOOPBACK, False),
        ("127.0.0.2", LOOPBACK, True),  # only the allowed range
        ("10.1.2.3", Allow.parse("10.1.0.0/16"), False),
        ("10.2.0.1", Allow.parse("10.1.0.0/16"), True),
        ("::ffff:10.1.2.3", Allow.parse("10.1.0.0/16"), True),  # mapped: not the same range
        ("localhost", Allow.parse("localhost"), False),
        ("hooks.corp.internal", Allow.parse("*.corp.internal"), False),
        ("corp.internal", Allow.parse("*.corp.internal"), True),
        ("169.254.169.254", Allow.parse("hooks.corp.internal"), True),
    ],
)
def test_allow_list(host: str, allow: Allow, denied: bool) -> None:
    assert (host_denial(host, allow) is not None) is denied


def test_reasons_name_the_range_and_the_embedded_ipv4() -> None:
    assert "benchmarking" in (address_denial(ip_address("198.18.0.1")) or "")
    why = address_denial(ip_address("2002:a9fe:a9fe::1")) or ""
    assert "6to4" in why and "169.254.169.254" in why


@pytest.mark.parametrize("bad", ["10.0.0.0/33", "not a host!", "1.2.3.999"])
def test_allow_entries_are_checked(bad: str) -> None:
    with pytest.raises(ValueError, match="outbound allow entry"):
        Allow.parse(bad)


# -- on the connection ----------------------------------------------------------------


@dataclass
class CountingServer:
    """A loopback TCP server that counts accepted connections and answers HTTP with
    ``status`` (and ``location``), keeping each request's head."""

    status: int = 200
    location: str | None = None
    accepted: int = 0
    heads: list[bytes] = field(default_factory=list)
    port: int = 0

    async def _handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.accepted += 1
        with contextlib.suppress(Exception):
            head = await reader.readuntil(b"\r\n\r\n")
            self.heads.append(head)
            length = next(
                (
                    int(line.split(b":", 1)[1])
                    for line in head.split(b"\r\n")
                    if line.lower().startswith(b"content-length:")
                ),
                0,
            )
            await reader.readexactly(length)
            extra = f"Location: {self.location}\r\n" if self.location else ""
            writer.write(
                f"HTTP/1.1 {self.status} X\r\nContent-Length: 0\r\n{extra}"
                "Connection: close\r\n\r\n".encode()
            )
            await writer.drain()
        writer.close()


@contextlib.asynccontextmanager
async def counting_server(**kwargs: object) -> AsyncIterator[CountingServer]:
    state = CountingServer(**kwargs)  # type: ignore[arg-type]
    server = await asyncio.start_server(state._handle, "127.0.0.1", 0)
    state.port = server.sockets[0].getsockname()[1]
    async with server:
        yield state


@dataclass
class FakeDns:
    """An injected resolver: every name maps to ``answers``; calls are counted."""

    answers: list[str]
    calls: int = 0

    async def __call__(self, host: str, port: int) -> list[str]:
        self.calls += 1
        return list(self.answers)


async def deliver_webhook(outbound: Outbound, url: str) -> DeliveryError | None:
    async with outbound_client(outbound, 5.0) as http:
        channel = WebhookChannel(http, timeout_ms=5_000, secrets=SECRETS)
        try:
            await channel.deliver(simple(make_breach()), webhook_receiver(url))
        except DeliveryError as exc:
            return exc
    return None


async def test_a_denied_address_is_never_connected_to() -> None:
    async with counting_server() as server:
        error = await deliver_webhook(Outbound(), f"http://127.0.0.1:{server.port}/hook")
        assert error is not None and (error.reason, error.retriable) == (Reason.DENIED, False)
        assert server.accepted == 0
        # the same server, allowed: reached once, so the count above means something
        assert (
            await deliver_webhook(Outbound(LOOPBACK), f"http://127.0.0.1:{server.port}/h") is None
        )
        assert server.accepted == 1


@pytest.mark.parametrize(
    "answers", [["127.0.0.1"], ["93.184.216.34", "127.0.0.1"], ["::ffff:127.0.0.1"]]
)
async def test_a_name_resolving_to_a_denied_address_is_refused(answers: list[str]) -> None:
    dns = FakeDns(answers)
    async with counting_server() as server:
        error = await deliver_webhook(
            Outbound(resolver=dns), f"http://hooks.example.com:{server.port}/hook"
        )
    assert error is not None and error.reason is Reason.DENIED
    assert server.accepted == 0
    assert dns.calls == 1


async def test_the_checked_address_is_the_one_connected_to_with_the_name_kept() -> None:
    """Resolved once; the connection goes to the checked address while the Host header
    names the receiver's host (TLS SNI follows the same host in httpcore)."""
    dns = FakeDns(["127.0.0.1"])
    async with counting_server() as server:
        url = f"http://hooks.example.com:{server.port}/hook"
        assert await deliver_webhook(Outbound(LOOPBACK, dns), url) is None
    assert (server.accepted, dns.calls) == (1, 1)
    assert f"host: hooks.example.com:{server.port}".encode() in server.heads[0].lower()


async def test_redirects_are_not_followed() -> None:
    async with counting_server(status=302, location="http://169.254.169.254/latest") as server:
        error = await deliver_webhook(Outbound(LOOPBACK), f"http://127.0.0.1:{server.port}/h")
    assert error is not None and (error.reason, error.retriable) == (Reason.PROTOCOL, False)
    assert server.accepted == 1


@pytest.mark.parametrize("url", ["http://169.254.169.254/latest/meta-data", "http://10.0.0.7/x"])
@pytest.mark.parametrize("case", HTTP_CASES, ids=lambda c: c.name)
async def test_every_http_channel_is_checked(case: ChannelCase, url: str) -> None:
    async with outbound_client(Outbound(), 1.0) as http:
        with pytest.raises(DeliveryError) as caught:
            await case.channel(http, 1_000).deliver(simple(make_breach()), case.receiver(url))
    assert (caught.value.reason, caught.value.retriable) == (Reason.DENIED, False)


@pytest.mark.parametrize("answers", [None, ["10.0.0.1"]])
async def test_email_is_checked(answers: list[str] | None) -> None:
    async with counting_server() as server:
        if answers is None:
            outbound, host = Outbound(), f"127.0.0.1:{server.port}"
        else:
            outbound, host = Outbound(resolver=FakeDns(answers)), f"smtp.example.com:{server.port}"
        channel = EmailChannel(
            timeout_ms=2_000,
            secrets=Secrets({"SLAWATCH_SECRET_S": "pw"}),
            renderer=Renderer(),
            outbound=outbound,
        )
        with pytest.raises(DeliveryError) as caught:
            await channel.deliver(simple(make_breach()), email_receiver(host))
    assert (caught.value.reason, caught.value.retriable) == (Reason.DENIED, False)
    assert server.accepted == 0
