"""Outbound destination policy (pure): which addresses and host names receivers may
point at.

Receivers are configuration that API users can write, so a URL or SMTP host could aim
the notifier at internal services or a cloud metadata endpoint (SSRF). One policy
decides, at two moments:

- at creation (``Receiver.checks``, so the config API, ``slawatch apply`` and
  ``slawatch validate``): :func:`host_denial` refuses literal addresses that are denied
  and obviously internal names (``localhost``, ``*.internal``, single labels, ...);
  other names are left to delivery, since only there is the answer of DNS known;
- at delivery (``services.notifier.channels.destinations``): every address the name
  resolves to goes through :func:`address_denial`; the connection is then made to the
  checked address itself, never resolved again.

Denied unless allowed (:data:`DENIED`): unspecified, "this network", loopback,
private, CGNAT, link-local, IETF protocol assignments, documentation, benchmarking,
6to4 relay anycast, multicast, reserved and broadcast; IPv4-mapped, IPv4-compatible
and IPv4-translated IPv6, NAT64 (well-known and local), discard-only, Teredo, 6to4,
ORCHID, unique-local, site-local and link-local IPv6; and, as a backstop, anything
Python's ``ipaddress`` does not call globally routable.

Host literals are read the way resolvers read them (``inet_aton``): ``2852039166``,
``0xa9fea9fe``, ``0251.0376.0251.0376`` and ``169.254.43518`` are all
169.254.169.254 and checked as such. A host whose last label is a number but that
does not parse as such a form (``1.2.3.08``, ``0x1g``) is refused as ambiguous
(:class:`AmbiguousAddress`), since resolvers and URL parsers disagree about it.

:class:`Allow` (the ``SLAWATCH_OUTBOUND_ALLOW`` setting: CIDRs and host names,
comma separated) re-enables chosen ranges or names; it is empty by default, so the
local profile and the tests, which deliver to loopback receivers, allow
``127.0.0.1/32`` and ``::1/128`` through it.
"""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Iterable
from dataclasses import dataclass, field

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


class AmbiguousAddress(ValueError):
    """A host that looks numeric but is no address form every parser reads the same."""


def _nets(*pairs: tuple[str, str]) -> tuple[tuple[IPNetwork, str], ...]:
    return tuple((ipaddress.ip_network(n), why) for n, why in pairs)


# Most specific first: the first match names the reason.
DENIED: tuple[tuple[IPNetwork, str], ...] = _nets(
    ("0.0.0.0/32", "unspecified"),
    ("0.0.0.0/8", "'this network' (0.0.0.0/8)"),
    ("10.0.0.0/8", "private (10.0.0.0/8)"),
    ("100.64.0.0/10", "shared address space, CGNAT (100.64.0.0/10)"),
    ("127.0.0.0/8", "loopback (127.0.0.0/8)"),
    ("169.254.0.0/16", "link-local, cloud metadata (169.254.0.0/16)"),
    ("172.16.0.0/12", "private (172.16.0.0/12)"),
    ("192.0.0.0/24", "IETF protocol assignments (192.0.0.0/24)"),
    ("192.0.2.0/24", "documentation (192.0.2.0/24)"),
    ("192.88.99.0/24", "6to4 relay anycast (192.88.99.0/24)"),
    ("192.168.0.0/16", "private (192.168.0.0/16)"),
    ("198.18.0.0/15", "benchmarking (198.18.0.0/15)"),
    ("198.51.100.0/24", "documentation (198.51.100.0/24)"),
    ("203.0.113.0/24", "documentation (203.0.113.0/24)"),
    ("224.0.0.0/4", "multicast (224.0.0.0/4)"),
    ("255.255.255.255/32", "broadcast"),
    ("240.0.0.0/4", "reserved (240.0.0.0/4)"),
    ("::/128", "unspecified (::)"),
    ("::1/128", "loopback (::1)"),
    ("::ffff:0:0/96", "IPv4-mapped IPv6 (::ffff:0:0/96)"),
    ("::ffff:0:0:0/96", "IPv4-translated IPv6 (::ffff:0:0:0/96)"),
    ("::/96", "IPv4-compatible IPv6 (::/96)"),
    ("64:ff9b::/96", "NAT64 (64:ff9b::/96)"),
    ("64:ff9b:1::/48", "local NAT64 (64:ff9b:1::/48)"),
    ("100::/64", "discard-only (100::/64)"),
    ("2001::/32", "Teredo (2001::/32)"),
    ("2001:db8::/32", "documentation (2001:db8::/32)"),
    ("2001::/23", "IETF protocol assignments (2001::/23)"),
    ("2002::/16", "6to4 (2002::/16)"),
    ("3fff::/20", "documentation (3fff::/20)"),
    ("fc00::/7", "unique-local (fc00::/7)"),
    ("fe80::/10", "link-local (fe80::/10)"),
    ("fec0::/10", "site-local (fec0::/10)"),
    ("ff00::/8", "multicast (ff00::/8)"),
)

#: Names that always mean this host or a private network, whatever DNS says.
INTERNAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain", ".home.arpa", ".lan")
INTERNAL_NAMES = frozenset({"localhost", "ip6-localhost", "ip6-loopback"})

_LIST_PUNCTUATION = str.maketrans({c: " " for c in ",[]\"'"})
_NUMERIC_LABEL = re.compile(r"^(0x[0-9a-f]*|[0-9]+)$", re.IGNORECASE)
_HOST_NAME = re.compile(r"^(\*\.)?[a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*$")


def _part(text: str) -> int:
    lowered = text.lower()
    if lowered.startswith("0x"):
        digits, base = lowered[2:], 16
        if digits == "":
            return 0  # inet_aton reads a bare "0x" as 0
    elif len(text) > 1 and text.startswith("0"):
        digits, base = text[1:], 8
    else:
        digits, base = text, 10
    try:
        return int(digits, base) if digits.isascii() and digits.isalnum() else -1
    except ValueError:
        return -1


def _loose_ipv4(host: str) -> ipaddress.IPv4Address:
    """``inet_aton``'s reading: 1 to 4 parts, each decimal, octal (``0``) or hex
    (``0x``); the last part fills the remaining bytes."""
    parts = host.split(".")
    if not 1 <= len(parts) <= 4 or any(p == "" for p in parts):
        raise AmbiguousAddress(f"{host!r} looks like a number but is no IPv4 address")
    values = [_part(p) for p in parts]
    *head, last = values
    if any(not 0 <= v <= 255 for v in head) or not 0 <= last < 256 ** (5 - len(parts)):
        raise AmbiguousAddress(f"{host!r} looks like a number but is no IPv4 address")
    number = 0
    for v in head:
        number = number * 256 + v
    number = (number << (8 * (5 - len(parts)))) + last
    return ipaddress.IPv4Address(number)


def normalize_host(host: str) -> str:
    """Lower case, without IPv6 brackets and without one trailing dot."""
    h = host.strip().lower()
    if h.startswith("[") and h.endswith("]"):
        h = h[1:-1]
    return h[:-1] if h.endswith(".") and not h.endswith("..") else h


def parse_address(host: str) -> IPAddress | None:
    """The address a host literal stands for, ``None`` for a name; raises
    :class:`AmbiguousAddress` for a numeric-looking host that is no address."""
    h = normalize_host(host)
    if ":" in h:
        try:
            return ipaddress.IPv6Address(h.split("%", 1)[0])
        except ValueError:
            raise AmbiguousAddress(f"{host!r} is no IPv6 address") from None
    last = h.rsplit(".", 1)[-1]
    if not _NUMERIC_LABEL.match(last):
        return None
    return _loose_ipv4(h)


def _ipv4_inside(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address a transition form carries, for the message."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address.teredo is not None:
        return address.teredo[1]
    if address in ipaddress.ip_network("64:ff9b::/96") or address in ipaddress.ip_network("::/96"):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


@dataclass(frozen=True)
class Allow:
    """Ranges and names the operator re-enables (``SLAWATCH_OUTBOUND_ALLOW``).

    A name entry (``hooks.corp.example``, or ``*.corp.example`` for its subdomains)
    permits that name and every address it resolves to; a CIDR permits addresses."""

    networks: tuple[IPNetwork, ...] = ()
    names: frozenset[str] = field(default_factory=frozenset)

    @classmethod
    def parse(cls, entries: str | Iterable[str]) -> Allow:
        """From ``"127.0.0.1/32, ::1, hooks.corp.example"`` or a list; raises
        ``ValueError`` naming a bad entry."""
        if isinstance(entries, str):
            # A JSON list too: the former setting SLAWATCH_OUTBOUND_ALLOW_CIDRS was one.
            items = entries.translate(_LIST_PUNCTUATION).split()
        else:
            items = list(entries)
        networks: list[IPNetwork] = []
        names: set[str] = set()
        for item in items:
            text = normalize_host(item)
            try:
                networks.append(ipaddress.ip_network(text, strict=False))
                continue
            except ValueError:
                pass
            if not _HOST_NAME.match(text) or _NUMERIC_LABEL.match(text.rsplit(".", 1)[-1]):
                raise ValueError(f"outbound allow entry {item!r} is neither a CIDR nor a host name")
            names.add(text)
        return cls(tuple(networks), frozenset(names))

    def __add__(self, other: Allow) -> Allow:
        return Allow(self.networks + other.networks, self.names | other.names)

    def permits_name(self, host: str) -> bool:
        h = normalize_host(host)
        return h in self.names or any(n.startswith("*.") and h.endswith(n[1:]) for n in self.names)

    def permits_address(self, address: IPAddress) -> bool:
        return any(address in net for net in self.networks)


LOOPBACK = Allow.parse("127.0.0.1/32, ::1/128")
"""What the local profile and the tests allow: receivers on this machine."""


def address_denial(address: IPAddress, allow: Allow = Allow()) -> str | None:
    """Why the notifier may not connect to ``address``, or ``None`` when it may."""
    if address.version == 6 and isinstance(address, ipaddress.IPv6Address):
        address = ipaddress.IPv6Address(int(address))  # the zone id plays no part
    if allow.permits_address(address):
        return None
    for net, why in DENIED:
        if address.version == net.version and address in net:
            if isinstance(address, ipaddress.IPv6Address):
                inner = _ipv4_inside(address)
                if inner is not None and net.prefixlen < 127:  # not for :: and ::1
                    return f"{address} is {why}, carrying {inner}"
            return f"{address} is {why}"
    if not address.is_global:
        return f"{address} is not globally routable"
    return None


def name_denial(host: str, allow: Allow = Allow()) -> str | None:
    """Why a host *name* is refused before any DNS (internal names), or ``None``."""
    h = normalize_host(host)
    if allow.permits_name(h):
        return None
    if h in INTERNAL_NAMES or h.endswith(INTERNAL_SUFFIXES):
        return f"{host} is an internal name"
    if "." not in h:
        return f"{host} is a single-label (internal) name"
    return None


def host_denial(host: str, allow: Allow = Allow()) -> str | None:
    """The check at creation: a literal address is checked as it is, an internal name
    refused; any other name passes (its addresses are checked at delivery)."""
    if not normalize_host(host):
        return "no host"
    if allow.permits_name(host):
        return None
    try:
        address = parse_address(host)
    except AmbiguousAddress as exc:
        return str(exc)
    if address is not None:
        return address_denial(address, allow)
    return name_denial(host, allow)
