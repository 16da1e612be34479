"""Which addresses a request may connect to: the address guard.

A link in a workflow, a model page or a redirect is chosen by someone else. Followed blindly,
`http://169.254.169.254/…` (the cloud's metadata service) or `http://127.0.0.1:8188/…` (this
pod's own ComfyUI) would be fetched from inside the pod. The guard refuses, at connect time, any
address that is not public:

- a request made with `public_only` (a URL from a workflow or another third party): every hop;
- by default, any hop that follows a redirect from a host that resolved to public addresses
  (CivitAI hands out storage links by redirect). A configured endpoint that is itself private (a
  mirror on the LAN, the tests' 127.0.0.1 → 127.0.0.2) may still redirect within its network;
- a host once reached under the rule stays under it for the rest of the run (the engine asks
  the final storage host again for every range), so a DNS answer that changes to a private
  address later (rebinding) is refused too.

The check is on the addresses a host name RESOLVES to, in the resolver the connection uses (an
aiohttp resolver here, `resolve_checked` for the engine's own connections), not on the name's
text; IP literals, which aiohttp does not resolve, are checked as written. `allow_private`
(IGNITION_ALLOW_PRIVATE_URLS) turns the refusals off. Through a proxy the proxy resolves the
target: only literals are checked then, and the proxy's own address is always allowed.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from ignition.errors import PrivateAddressError

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
# Whether an address is public; tests inject one that calls a loopback address public.
Classifier = Callable[[IPAddress], bool]

_NAT64 = ipaddress.IPv6Network("64:ff9b::/96")
_IPV4_COMPATIBLE = ipaddress.IPv6Network("::/96")


def _embedded_ipv4(address: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 form carries (mapped ::ffff:a.b.c.d, 6to4, NAT64, compatible):
    connecting to it reaches that IPv4 address, so it is judged as that address."""
    if address.ipv4_mapped is not None:
        return address.ipv4_mapped
    if address.sixtofour is not None:
        return address.sixtofour
    if address in _NAT64 or (address in _IPV4_COMPATIBLE and int(address) > 1):
        return ipaddress.IPv4Address(int(address) & 0xFFFFFFFF)
    return None


def is_public_address(address: IPAddress) -> bool:
    """Globally routable unicast: not loopback, RFC 1918, link-local (169.254/16 with the
    metadata service, fe80::/10), CGNAT 100.64/10, unique-local fc00::/7, multicast,
    unspecified or reserved, in any IPv4-in-IPv6 form either."""
    if isinstance(address, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(address)
        if embedded is not None:
            return is_public_address(embedded)
        if address.is_site_local:
            return False
    # is_global excludes the IANA special-purpose ranges (100.64/10 included); multicast is
    # "global" there but is never a server.
    return address.is_global and not address.is_multicast


def describe_address(address: IPAddress) -> str:
    """What kind of non-public address this is, for the error message."""
    if isinstance(address, ipaddress.IPv6Address):
        address = _embedded_ipv4(address) or address
    kinds = (
        ("loopback", address.is_loopback),
        ("link-local", address.is_link_local),
        ("unspecified", address.is_unspecified),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("shared (CGNAT)", address in ipaddress.IPv4Network("100.64.0.0/10")),
    )
    return next((name for name, matches in kinds if matches), "reserved")


def ip_literal(host: str) -> IPAddress | None:
    """`host` as an address when it is written as one (brackets and zone id allowed)."""
    try:
        return ipaddress.ip_address(host.strip("[]").partition("%")[0])
    except ValueError:
        return None


class AddressGuard:
    """The rule for one HttpClient, and what it has learned about each host during the run."""

    def __init__(
        self,
        *,
        allow_private: bool = False,
        is_public: Classifier = is_public_address,
        exempt_hosts: Iterable[str] = (),
    ) -> None:
        self.allow_private = allow_private
        self._is_public = is_public
        # Proxies: a proxy on the LAN is the user's choice, and the proxy resolves the target.
        self._exempt = frozenset(host.lower() for host in exempt_hosts)
        self._public: dict[str, bool] = {}  # host → did it last resolve to public addresses only
        self._pinned: set[str] = set()  # hosts reached under the rule: they must stay public

    def seen_public(self, host: str) -> bool:
        """The host's last resolution was public only (a redirect from it is then checked)."""
        return self._public.get(host.lower(), False)

    def pinned(self, host: str) -> bool:
        """A host reached under the rule before: every connection to it is checked."""
        return not self.allow_private and host.lower() in self._pinned

    def pin(self, host: str) -> None:
        if not self.allow_private:
            self._pinned.add(host.lower())

    def admit(self, host: str, addresses: Sequence[str], *, public_only: bool) -> None:
        """Record what `host` resolved to; with `public_only`, PrivateAddressError unless every
        address is public (or private ones are allowed)."""
        host = host.lower()
        parsed = [ip_literal(address) for address in addresses]
        bad = [a for a in parsed if a is None or not self._is_public(a)]
        self._public[host] = bool(parsed) and not bad
        if not (public_only and bad) or self.allow_private or host in self._exempt:
            return
        first = bad[0]
        kind = "unreadable" if first is None else describe_address(first)
        where = host if ip_literal(host) is not None else f"{host} (it resolves to {first})"
        raise PrivateAddressError(f"refused to connect to {where}: a {kind} address, not public")

    def admit_literal(self, host: str, *, public_only: bool) -> None:
        """An IP literal needs no resolution, so it is checked here, as written."""
        if ip_literal(host) is not None:
            self.admit(host, [host.strip("[]")], public_only=public_only)


class CheckingResolver(AbstractResolver):
    """aiohttp's resolver, with every answer put to the guard before a connection is made."""

    def __init__(self, guard: AddressGuard, *, public_only: bool) -> None:
        self._guard = guard
        self._public_only = public_only
        self._inner = DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        results = await self._inner.resolve(host, port, family)
        self._guard.admit(host, [r["host"] for r in results], public_only=self._public_only)
        return results

    async def close(self) -> None:
        await self._inner.close()


async def resolve_checked(
    guard: AddressGuard, host: str, port: int, *, public_only: bool
) -> list[tuple[Any, ...]]:
    """`getaddrinfo` for a connection of our own, put to the guard: the addresses (as
    `create_connection`'s `sock_addr`s and families) that may be connected to."""
    literal = ip_literal(host)
    if literal is not None:
        guard.admit(host, [str(literal)], public_only=public_only)
        family = socket.AF_INET6 if literal.version == 6 else socket.AF_INET
        return [(family, (str(literal), port))]
    loop = asyncio.get_running_loop()
    infos = await loop.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    guard.admit(host, [str(info[4][0]) for info in infos], public_only=public_only)
    return [(info[0], info[4]) for info in infos]
