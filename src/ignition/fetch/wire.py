"""Ranged GETs on keep-alive connections that read the body straight into a reused buffer.

This is the download's hot path. Through aiohttp every socket read becomes a new bytes object
that is queued, joined and handed over; at line rate that cost more CPU than the rest of the
download (`benchmarks/bench_download.py`). Here asyncio's BufferedProtocol has the socket
`recv_into` one buffer per connection, which is written to the file whenever it is full, in
place, and reused: memory is one buffer per connection, and a disk slower than the network
holds back the sender (the loop waits in the write) instead of piling bytes up.

Only the plain case is handled: a 206 with a Content-Length to a Range request. Any other answer
(an error to explain, a redirect, a chunked body) is returned as a head with its body unread, and
the engine asks again through the HttpClient, which owns auth, redirects and error reporting.
Proxies are the HttpClient's too: `direct` says whether a URL may be fetched here at all.
"""

from __future__ import annotations

import asyncio
import urllib.request
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ignition._http import USER_AGENT, tls_context
from ignition._http.addresses import AddressGuard, resolve_checked
from ignition.fetch.segments import Segment

_HEAD_LIMIT = 64 << 10
_URL_SAFE = "/?#[]@!$&'()*+,;=:%~-._"  # RFC 3986 reserved and unreserved marks, and '%'
# Writes bytes at a file offset, synchronously (see fetch/disk.py for why); may raise.
WriteAt = Callable[[int, memoryview], None]


class WireError(Exception):
    """The connection failed: refused, cut, stalled, or spoke something that is not HTTP/1.1."""

    def __init__(self, reason: str, *, stalled: bool = False, before_answer: bool = False) -> None:
        super().__init__(reason)
        self.stalled = stalled
        # Nothing came back at all: on a reused idle connection the server had closed it.
        self.before_answer = before_answer


@dataclass(frozen=True)
class Head:
    status: int
    headers: Mapping[str, str]  # lower-case names

    @property
    def keep_alive(self) -> bool:
        return self.headers.get("connection", "").lower() != "close"

    @property
    def plain_body_length(self) -> int | None:
        """The body's length when it is sent as is (not chunked): the only body read here."""
        if "transfer-encoding" in self.headers:
            return None
        value = self.headers.get("content-length", "")
        return int(value) if value.isdigit() else None


def direct(url: str) -> bool:
    """Whether `url` can be fetched on a raw connection (http/https, no proxy configured)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        return False
    proxies = urllib.request.getproxies()
    return parts.scheme not in proxies or bool(urllib.request.proxy_bypass(parts.hostname))


class WirePool:
    """Idle keep-alive connections per (scheme, host, port), shared by every file of a run."""

    def __init__(
        self, *, connect_timeout_s: float, read_timeout_s: float, guard: AddressGuard
    ) -> None:
        self._guard = guard
        self._connect_timeout_s = connect_timeout_s
        self._read_timeout_s = read_timeout_s
        self._idle: defaultdict[tuple[str, str, int], list[WireConnection]] = defaultdict(list)

    async def connect(self, url: str, buffer_bytes: int) -> WireConnection:
        """An idle connection to `url`'s server if one is left open, else a new one."""
        key = _origin(url)
        idle = self._idle[key]
        while idle:
            connection = idle.pop()
            if connection.usable:
                return connection
        scheme, host, port = key
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(self._connect_timeout_s):
                # The HttpClient's rule: a host it reached as public must still resolve so.
                addresses = await resolve_checked(
                    self._guard, host, port, public_only=self._guard.pinned(host)
                )
                return await self._connect_any(loop, addresses, scheme, host, buffer_bytes)
        except TimeoutError:
            raise WireError(
                f"no connection to {host}:{port} within {self._connect_timeout_s:g} s"
            ) from None
        except OSError as error:
            reason = error.strerror or error
            raise WireError(f"cannot connect to {host}:{port} ({reason})") from None

    async def _connect_any(
        self,
        loop: asyncio.AbstractEventLoop,
        addresses: list[tuple[Any, ...]],
        scheme: str,
        host: str,
        buffer_bytes: int,
    ) -> WireConnection:
        """Connect to the first of the checked addresses that answers."""
        failure: OSError = OSError(f"{host} has no address")
        for _family, address in addresses:
            try:
                _, protocol = await loop.create_connection(
                    lambda: WireConnection(loop, buffer_bytes, self._read_timeout_s),
                    address[0],
                    address[1],
                    ssl=tls_context() if scheme == "https" else None,
                    server_hostname=host if scheme == "https" else None,
                )
            except OSError as error:
                failure = error
                continue
            return protocol
        raise failure

    def give_back(self, url: str, connection: WireConnection) -> None:
        if connection.usable:
            connection.reused = True
            self._idle[_origin(url)].append(connection)
        else:
            connection.close()

    def close(self) -> None:
        for connections in self._idle.values():
            for connection in connections:
                connection.close()
        self._idle.clear()


class WireConnection(asyncio.BufferedProtocol):
    """One HTTP/1.1 connection: one request at a time, its body streamed into a Segment."""

    def __init__(
        self, loop: asyncio.AbstractEventLoop, buffer_bytes: int, read_timeout_s: float
    ) -> None:
        self._loop = loop
        self._bytes = bytearray(buffer_bytes)
        self._buffer = memoryview(self._bytes)
        self._fill = 0
        self._read_timeout_s = read_timeout_s
        self._transport: asyncio.Transport | None = None
        self._closed = False
        self._failure: WireError | None = None
        self.reused = False
        # The request in progress: its answer's head, then its body.
        self._head: asyncio.Future[Head] | None = None
        self._answered = False  # a head came; its body waits for stream_body
        self._body: asyncio.Future[None] | None = None
        self._segment: Segment | None = None
        self._write_at: WriteAt | None = None
        self._body_left = 0
        self._received = 0
        self._last_byte_at = 0.0
        self._watchdog: asyncio.TimerHandle | None = None

    # --- the engine's side ------------------------------------------------------------------
    @property
    def usable(self) -> bool:
        return not self._closed and self._head is None and self._body is None

    async def request(self, url: str, first: int, last: int, headers: Mapping[str, str]) -> Head:
        """Send `GET url` for bytes first..last and wait for the answer's head."""
        assert self._transport is not None and self.usable
        parts = urlsplit(url)
        target = parts.path or "/"
        if parts.query:
            target = f"{target}?{parts.query}"
        # A Location header may carry raw spaces or non-ASCII; escapes already there stay.
        target = quote(target, safe=_URL_SAFE)
        lines = [
            f"GET {target} HTTP/1.1",
            f"Host: {parts.netloc.rpartition('@')[2]}",
            f"User-Agent: {USER_AGENT}",
            "Accept-Encoding: identity",
            f"Range: bytes={first}-{last}",
            *(f"{name}: {value}" for name, value in headers.items()),
        ]
        self._head = self._loop.create_future()
        self._received = 0
        self._arm_watchdog()
        self._transport.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1"))
        try:
            return await self._head
        finally:
            self._head = None

    async def stream_body(self, head: Head, segment: Segment, write_at: WriteAt) -> None:
        """Write the body into `segment` until it ends (it may shrink meanwhile) or the body
        does. Raises WireError, or whatever `write_at` raised."""
        length = head.plain_body_length
        assert self._transport is not None and length is not None
        self._segment, self._write_at, self._body_left = segment, write_at, length
        self._body = self._loop.create_future()
        try:
            self._transport.resume_reading()
            self._pump()
            await self._body
            if not head.keep_alive:
                self.close()
        finally:
            self._body = self._segment = self._write_at = None
            self._answered = False
            self._disarm_watchdog()

    def close(self) -> None:
        self._closed = True
        self._disarm_watchdog()
        if self._transport is not None:
            self._transport.close()

    # --- asyncio's side ---------------------------------------------------------------------
    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self._transport = transport

    def get_buffer(self, sizehint: int) -> memoryview:
        return self._buffer[self._fill :]

    def buffer_updated(self, nbytes: int) -> None:
        self._fill += nbytes
        self._received += nbytes
        self._last_byte_at = self._loop.time()
        if self._head is not None and not self._head.done():
            self._parse_head()
        elif self._body is not None and not self._body.done():
            self._pump()
        elif self._answered:
            if self._fill == len(self._buffer) and self._transport is not None:
                # The engine has not decided about this body yet, and get_buffer must never
                # hand out an empty buffer.
                self._transport.pause_reading()
        else:
            self._fail(WireError("the server sent bytes nobody asked for"))

    def eof_received(self) -> bool:
        return False  # close: the answer ended early, or the server closed an idle connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        where = "mid-answer" if self._received else "before answering"
        self._fail(WireError(f"connection closed {where}", before_answer=not self._received))

    # --- internals --------------------------------------------------------------------------
    def _parse_head(self) -> None:
        assert self._head is not None
        end = self._bytes.find(b"\r\n\r\n", 0, self._fill)
        if end < 0:
            if self._fill >= min(_HEAD_LIMIT, len(self._buffer)):
                self._fail(WireError("the answer's head is too large"))
            return
        try:
            head = _parse_head(self._bytes[:end])
        except ValueError as error:
            self._fail(WireError(f"not an HTTP/1.1 answer ({error})"))
            return
        # The body's first bytes move to the front, to wait for stream_body (or close).
        rest = self._fill - end - 4
        self._bytes[:rest] = self._bytes[end + 4 : self._fill]  # same length: no resize
        self._fill = rest
        self._answered = True
        self._head.set_result(head)

    def _pump(self) -> None:
        """Write what the segment wants once the buffer is full or the segment complete, and
        settle the body when the segment (or the body, or the connection) ends."""
        body, segment, write_at = self._body, self._segment, self._write_at
        if body is None or body.done() or segment is None or write_at is None:
            return
        if self._fill > self._body_left:
            self._failure = self._failure or WireError("more bytes than the Content-Length")
            self._fill = self._body_left
        wanted = min(segment.end - segment.position, self._body_left)
        count = min(self._fill, wanted)
        full = self._fill == len(self._buffer)
        if count and (count == wanted or full or self._failure is not None):
            # Bytes that did arrive are kept, even from a connection that was cut.
            try:
                write_at(segment.position, self._buffer[:count])
            except BaseException as error:
                body.set_exception(error)
                self.close()
                return
            segment.position += count
            self._body_left -= count
            wanted -= count
            leftover, self._fill = self._fill - count, 0
        else:
            leftover = self._fill
        if not wanted:
            if self._body_left or leftover:
                self.close()  # the segment ended first: another connection took the rest
            body.set_result(None)
        elif self._failure is not None:
            body.set_exception(self._failure)

    def _fail(self, error: WireError) -> None:
        self._failure = self._failure or error
        self._disarm_watchdog()
        if self._head is not None and not self._head.done():
            self._head.set_exception(self._failure)
        self._pump()
        if not self._closed:
            self.close()

    def _arm_watchdog(self) -> None:
        self._last_byte_at = self._loop.time()
        if self._watchdog is None:
            self._watchdog = self._loop.call_later(self._read_timeout_s, self._check_stall)

    def _disarm_watchdog(self) -> None:
        if self._watchdog is not None:
            self._watchdog.cancel()
            self._watchdog = None

    def _check_stall(self) -> None:
        # One timer per read timeout instead of one per read: re-armed for the time left.
        self._watchdog = None
        idle = self._loop.time() - self._last_byte_at
        if idle >= self._read_timeout_s:
            self._fail(WireError(f"no bytes for {self._read_timeout_s:g} s", stalled=True))
        elif self._head is not None or self._body is not None:
            self._watchdog = self._loop.call_later(self._read_timeout_s - idle, self._check_stall)


def _parse_head(raw: bytes | bytearray) -> Head:
    status_line, *lines = raw.decode("latin-1").split("\r\n")
    version, _, rest = status_line.partition(" ")
    if not version.startswith("HTTP/1."):
        raise ValueError(status_line[:40])
    status = int(rest[:3])
    headers: dict[str, str] = {}
    for line in lines:
        name, sep, value = line.partition(":")
        if not sep:
            raise ValueError(f"bad header line {line[:40]!r}")
        headers[name.strip().lower()] = value.strip()
    return Head(status, headers)


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    default = 443 if parts.scheme == "https" else 80
    return parts.scheme, parts.hostname or "", parts.port or default
