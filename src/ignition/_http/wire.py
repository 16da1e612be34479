"""Ranged GETs on keep-alive connections that read the body straight into a reused buffer.

This is the download's hot path. Through aiohttp every socket read becomes a new bytes object
that is queued, joined and handed over; at line rate that cost more CPU than the rest of the
download (`benchmarks/bench_download.py`). Here asyncio's BufferedProtocol has the socket
`recv_into` one buffer per connection, which is written to the file whenever it is full, in
place, and reused: memory is one buffer per connection, and a disk slower than the network
holds back the sender (the loop waits in the write) instead of piling bytes up.

Only the plain case is handled: a 206 with a Content-Length to a Range request (and a status
the retry policy retries, whose body nobody reads). For any other answer (an error to explain,
a redirect, a chunked body) `WirePool.ranged` returns None, nothing of it was read, and the
HttpClient asks again through aiohttp, which owns redirects and error bodies. The HttpClient
decides which URLs come here at all (not through a proxy) and owns the pool.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote, urlsplit

from ignition._http.addresses import AddressGuard, resolve_checked
from ignition._http.basics import USER_AGENT, HttpError, tls_context
from ignition._http.body import Span, StreamError, WriteAt

_HEAD_LIMIT = 64 << 10
_URL_SAFE = "/?#[]@!$&'()*+,;=:%~-._"  # RFC 3986 reserved and unreserved marks, and '%'


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
            raise StreamError(
                f"no connection to {host}:{port} within {self._connect_timeout_s:g} s"
            ) from None
        except OSError as error:
            reason = error.strerror or error
            raise StreamError(f"cannot connect to {host}:{port} ({reason})") from None

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

    async def ranged(
        self,
        url: str,
        first: int,
        last: int,
        headers: Mapping[str, str],
        buffer_bytes: int,
        answerable: Callable[[int], bool],
    ) -> WireAnswer | None:
        """GET bytes first..last of `url`: the answer when it is a plain 206 (or a status for
        which `answerable` is true: its body is never read), else None, with nothing read."""
        while True:
            connection = await self.connect(url, buffer_bytes)
            try:
                head = await connection.request(url, first, last, headers)
                break
            except StreamError as error:
                connection.close()
                if not (connection.reused and error.before_answer):
                    raise
                # The server had closed this idle connection: ask on another one.
            except BaseException:
                connection.close()
                raise
        if (head.status == 206 and head.plain_body_length is not None) or answerable(head.status):
            return WireAnswer(self, url, connection, head)
        connection.close()
        return None

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


class WireAnswer:
    """A RangedAnswer on a wire connection; `close` puts the connection back when its body was
    read to the end, and closes it otherwise."""

    def __init__(self, pool: WirePool, url: str, connection: WireConnection, head: Head) -> None:
        self._pool = pool
        self._url = url
        self._connection = connection
        self._head = head
        self._reusable = False

    @property
    def status(self) -> int:
        return self._head.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._head.headers

    @property
    def url(self) -> str:
        return self._url

    async def stream_into(self, span: Span, write_at: WriteAt) -> None:
        # A complete answer may still be short of the span (servers may cap a range): the
        # caller sees it in span.position, and that is no failure.
        await self._connection.stream_body(self._head, span, write_at)
        self._reusable = True

    async def raise_for_status(self) -> None:
        # Only retryable statuses come here without a body worth reading.
        if self.status >= 300:
            raise HttpError(self.status, self._url, self._head.headers, "")

    def close(self) -> None:
        if self._reusable:
            self._pool.give_back(self._url, self._connection)
        else:
            self._connection.close()


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
        self._failure: StreamError | None = None
        self.reused = False
        # The request in progress: its answer's head, then its body.
        self._head: asyncio.Future[Head] | None = None
        self._answered = False  # a head came; its body waits for stream_body
        self._body: asyncio.Future[None] | None = None
        self._segment: Span | None = None
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

    async def stream_body(self, head: Head, segment: Span, write_at: WriteAt) -> None:
        """Write the body into `segment` until it ends (it may shrink meanwhile) or the body
        does. Raises StreamError, or whatever `write_at` raised."""
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
            self._fail(StreamError("the server sent bytes nobody asked for"))

    def eof_received(self) -> bool:
        return False  # close: the answer ended early, or the server closed an idle connection

    def connection_lost(self, exc: Exception | None) -> None:
        self._closed = True
        where = "mid-answer" if self._received else "before answering"
        self._fail(StreamError(f"connection closed {where}", before_answer=not self._received))

    # --- internals --------------------------------------------------------------------------
    def _parse_head(self) -> None:
        assert self._head is not None
        end = self._bytes.find(b"\r\n\r\n", 0, self._fill)
        if end < 0:
            if self._fill >= min(_HEAD_LIMIT, len(self._buffer)):
                self._fail(StreamError("the answer's head is too large"))
            return
        try:
            head = _parse_head(self._bytes[:end])
        except ValueError as error:
            self._fail(StreamError(f"not an HTTP/1.1 answer ({error})"))
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
            self._failure = self._failure or StreamError("more bytes than the Content-Length")
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

    def _fail(self, error: StreamError) -> None:
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
            self._fail(StreamError(f"no bytes for {self._read_timeout_s:g} s", stalled=True))
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
