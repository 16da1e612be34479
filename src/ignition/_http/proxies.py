"""Which proxy a URL goes through, from the settings (HTTPS_PROXY, HTTP_PROXY, NO_PROXY).

The HttpClient is told its proxies; it never reads the environment itself (aiohttp's
`trust_env` is off), so Settings stays the one reader. A URL behind a proxy always goes through
aiohttp, which speaks to proxies; the client's own connections serve only direct URLs.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from ignition._http.addresses import ip_literal

if TYPE_CHECKING:
    from ignition.settings import Settings


@dataclass(frozen=True)
class Proxies:
    """The proxy for each scheme, and NO_PROXY: comma-separated host names (a name covers its
    subdomains; a leading dot is ignored), `host:port`, IP networks (`10.0.0.0/8`), or `*`."""

    http: str | None = None
    https: str | None = None
    no_proxy: str = ""

    @classmethod
    def of(cls, settings: Settings) -> Proxies:
        return cls(http=settings.http_proxy, https=settings.https_proxy, no_proxy=settings.no_proxy)

    def for_url(self, url: str) -> str | None:
        """The proxy URL to send `url` through, or None to connect directly."""
        parts = urlsplit(url)
        proxy = {"http": self.http, "https": self.https}.get(parts.scheme)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        if not proxy or self._bypassed(parts.hostname or "", port):
            return None
        return proxy

    @property
    def hosts(self) -> list[str]:
        """The proxies' own host names (the address guard lets a proxy on the LAN be used)."""
        return [urlsplit(proxy).hostname or "" for proxy in (self.http, self.https) if proxy]

    def _bypassed(self, host: str, port: int) -> bool:
        host = host.lower().strip("[]")
        address = ip_literal(host)
        for entry in (e.strip().lower() for e in self.no_proxy.split(",")):
            if not entry:
                continue
            if entry == "*":
                return True
            entry_address = ip_literal(entry)
            if entry_address is not None:
                if address == entry_address:
                    return True
                continue
            if address is not None and "/" in entry:
                try:
                    if address in ipaddress.ip_network(entry, strict=False):
                        return True
                except ValueError:
                    pass
                continue
            name, _, entry_port = entry.lstrip(".").rpartition(":")
            if not name or not entry_port.isdigit():
                name, entry_port = entry.lstrip("."), ""
            if entry_port and int(entry_port) != port:
                continue
            if host == name or host.endswith(f".{name}"):
                return True
        return False
