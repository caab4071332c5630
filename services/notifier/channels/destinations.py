"""Outbound destination policy: receivers may not point into private networks.

Receivers are configuration that API users can write, so a URL could aim the notifier
at internal services or a cloud metadata endpoint (SSRF). Before each HTTP delivery
the URL's host is resolved and every address checked against the deny list; one
denied address refuses the delivery (``denied``, not retriable: it is a config error).

    denied:  0.0.0.0/8, 10.0.0.0/8, 100.64.0.0/10, 169.254.0.0/16 (link-local, cloud
             metadata), 172.16.0.0/12, 192.168.0.0/16, fc00::/7, fe80::/10
    allowed: everything else, loopback included (the local profile's demo receiver),
             plus the operator's ``SLAWATCH_OUTBOUND_ALLOW_CIDRS`` (e.g. ``10.1.0.0/16``)

The check happens before connecting, and httpx resolves again when it connects: a DNS
answer that changes in between (rebinding) is not caught; networks that need that
guarantee put an egress proxy in front.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Sequence
from dataclasses import dataclass, field
from urllib.parse import urlsplit

from services.notifier.channels.base import DeliveryError, Reason

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network

DENIED = tuple(
    ipaddress.ip_network(n)
    for n in (
        "0.0.0.0/8",
        "10.0.0.0/8",
        "100.64.0.0/10",
        "169.254.0.0/16",
        "172.16.0.0/12",
        "192.168.0.0/16",
        "fc00::/7",
        "fe80::/10",
    )
)


@dataclass(frozen=True)
class DestinationPolicy:
    """Which addresses HTTP channels may send to."""

    allowed: Sequence[IPNetwork] = field(default_factory=tuple)
    denied: Sequence[IPNetwork] = DENIED

    @classmethod
    def allowing(cls, cidrs: Sequence[str]) -> DestinationPolicy:
        return cls(allowed=tuple(ipaddress.ip_network(c, strict=False) for c in cidrs))

    def permits(self, address: str) -> bool:
        ip = ipaddress.ip_address(address.split("%", 1)[0])
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            ip = ip.ipv4_mapped
        if any(ip in net for net in self.allowed):
            return True
        return not any(ip in net for net in self.denied)

    async def check(self, url: str, receiver_name: str) -> None:
        """Raise ``denied`` when the URL's host resolves into a denied network."""
        host = urlsplit(url).hostname or ""
        try:
            addresses = [ipaddress.ip_address(host).compressed]
        except ValueError:
            try:
                infos = await asyncio.get_running_loop().getaddrinfo(
                    host, None, type=socket.SOCK_STREAM
                )
            except OSError:
                return  # unresolvable: the connection attempt reports it (retriable)
            addresses = [str(info[4][0]) for info in infos]
        if not all(self.permits(a) for a in addresses):
            raise DeliveryError(
                Reason.DENIED,
                f"{receiver_name} points into a denied network (SLAWATCH_OUTBOUND_ALLOW_CIDRS)",
                retriable=False,
            )


PERMISSIVE = DestinationPolicy(denied=())
"""For tests and tools that need no checks."""
