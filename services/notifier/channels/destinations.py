"""The outbound destination policy at delivery: resolve once, check every address,
connect to the checked address.

:mod:`shared.outbound` decides which addresses are denied; this module applies it on
the connection itself, for every channel:

- HTTP channels (webhook, Slack, Teams, PagerDuty, Alertmanager) send through a client
  from :func:`outbound_client`. Its transport hands httpcore a network backend
  (:class:`GuardedBackend`) whose ``connect_tcp`` resolves the host with the injected
  :data:`Resolver`, refuses the connection when any answer is denied, and connects to
  the checked address; httpcore keeps the URL's host for the ``Host`` header, TLS SNI
  and certificate check, and pools connections per host name. Nothing resolves the
  name a second time, so a DNS answer that changes between check and connect
  (rebinding) cannot slip through; each redirect hop would be checked the same way,
  but redirects are not followed at all (a 3xx is a ``protocol`` failure).
- Email resolves the SMTP host through :meth:`Outbound.addresses` and connects
  ``smtplib`` to those addresses (``services.notifier.channels.email``).

A refusal raises :class:`DestinationDenied`, which the channels turn into a
``denied`` delivery error (not retriable: it is a configuration error). The deny
list is lifted only by ``SLAWATCH_OUTBOUND_ALLOW`` (:class:`shared.outbound.Allow`).

    NotifierError
    └── DestinationDenied
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, field

import httpcore
import httpx

from services.notifier.exceptions import NotifierError
from shared.outbound import (
    Allow,
    AmbiguousAddress,
    address_denial,
    name_denial,
    normalize_host,
    parse_address,
)

Resolver = Callable[[str, int], Awaitable[list[str]]]
"""``(host name, port)`` → the addresses to connect to; raises ``OSError`` when the
name does not resolve. Tests inject one to map a name onto any address."""


class DestinationDenied(NotifierError):
    """The destination resolves to (or is) an address the outbound policy denies."""


async def system_resolver(host: str, port: int) -> list[str]:
    """The operating system's resolver (``getaddrinfo``), answers in its order."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))


@dataclass(frozen=True)
class Outbound:
    """The policy with the resolver it is applied through."""

    allow: Allow = field(default_factory=Allow)
    resolver: Resolver = system_resolver

    async def addresses(self, host: str, port: int) -> list[str]:
        """The checked addresses to connect to for ``host``; raises
        :class:`DestinationDenied` when the host or any of its addresses is denied,
        ``OSError`` when it does not resolve (retriable)."""
        name = normalize_host(host)
        try:
            literal = parse_address(name)
        except AmbiguousAddress as exc:
            raise DestinationDenied(str(exc)) from None
        if literal is not None:
            self._check(literal)
            return [str(literal)]
        named = self.allow.permits_name(name)
        if not named:
            why = name_denial(name, self.allow)
            if why is not None:
                raise DestinationDenied(why)
        resolved = await self.resolver(name, port)
        if not resolved:
            raise OSError(f"{host} resolved to no address")
        if not named:
            # One denied answer refuses them all: which one a connection would take
            # is the resolver's choice, not ours.
            for address in resolved:
                self._check(ipaddress.ip_address(address), host)
        return resolved

    def _check(
        self, address: ipaddress.IPv4Address | ipaddress.IPv6Address, host: str = ""
    ) -> None:
        why = address_denial(address, self.allow)
        if why is not None:
            raise DestinationDenied(f"{host} resolves to {why}" if host else why)


class GuardedBackend(httpcore.AsyncNetworkBackend):
    """httpcore's network backend, connecting only to addresses :class:`Outbound` checked."""

    def __init__(
        self, outbound: Outbound, inner: httpcore.AsyncNetworkBackend | None = None
    ) -> None:
        self._outbound = outbound
        self._inner = inner or httpcore.AnyIOBackend()

    async def connect_tcp(
        self,
        host: str,
        port: int,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        local_address: str | None = None,
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        try:
            async with asyncio.timeout(timeout):
                addresses = await self._outbound.addresses(host, port)
        except TimeoutError:
            raise httpcore.ConnectTimeout(f"resolving {host} took over {timeout} s") from None
        except OSError as exc:
            raise httpcore.ConnectError(f"cannot resolve {host}: {exc}") from None
        failure: httpcore.ConnectError | None = None
        for address in addresses:
            try:
                return await self._inner.connect_tcp(
                    address, port, timeout, local_address, socket_options
                )
            except httpcore.ConnectError as exc:
                failure = exc
        assert failure is not None
        raise failure

    async def connect_unix_socket(
        self,
        path: str,
        timeout: float | None = None,  # noqa: ASYNC109 - httpcore's interface
        socket_options: Iterable[httpcore.SOCKET_OPTION] | None = None,
    ) -> httpcore.AsyncNetworkStream:
        raise DestinationDenied("unix sockets are not a destination")

    async def sleep(self, seconds: float) -> None:
        await self._inner.sleep(seconds)


class GuardedTransport(httpx.AsyncHTTPTransport):
    """httpx's transport with :class:`GuardedBackend` under its connection pool."""

    def __init__(self, outbound: Outbound, *, verify: bool = True) -> None:
        super().__init__(verify=verify, trust_env=False)
        limits = httpx.Limits()
        # httpx's transport takes no network backend, so its pool is built again with
        # the same arguments plus ours (the transport's only state is that pool).
        self._pool = httpcore.AsyncConnectionPool(
            ssl_context=httpx.create_ssl_context(verify=verify, trust_env=False),
            max_connections=limits.max_connections,
            max_keepalive_connections=limits.max_keepalive_connections,
            keepalive_expiry=limits.keepalive_expiry,
            network_backend=GuardedBackend(outbound),
        )


def outbound_client(outbound: Outbound, timeout_s: float) -> httpx.AsyncClient:
    """The client HTTP channels deliver through: guarded, redirects not followed, no
    proxy from the environment (a proxy would connect on our behalf, unchecked)."""
    return httpx.AsyncClient(
        transport=GuardedTransport(outbound),
        timeout=httpx.Timeout(timeout_s),
        follow_redirects=False,
        trust_env=False,
    )
