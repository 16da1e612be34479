"""A ranged answer whose body streams into a span of a file: what `HttpClient.ranged` yields.

Two transports produce one: the engine's own keep-alive connections (wire.py, the fast path:
the socket is read straight into the connection's buffer, which is handed to `write_at` in
place) and aiohttp responses (`ResponseAnswer`: chunks batched up to `buffer_bytes` and written
with one call). Either way the body is written only up to the span's end, which may shrink
while it streams (another connection took the rest), and a failure of the connection mid-body
is a StreamError: the caller keeps what arrived and asks again for the rest.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

import aiohttp

from ignition._http.basics import NETWORK_ERRORS, raise_for_status


class Span(Protocol):
    """The bytes a body is written into: [position, end); `position` advances as it is."""

    position: int
    end: int


class WriteAt(Protocol):
    """Writes bytes at a file offset, synchronously (see fetch/disk.py for why); may raise."""

    def __call__(self, offset: int, /, *chunks: bytes | memoryview) -> None: ...


class StreamError(Exception):
    """The connection failed: refused, cut, stalled, or spoke something that is not HTTP/1.1."""

    def __init__(self, reason: str, *, stalled: bool = False, before_answer: bool = False) -> None:
        super().__init__(reason)
        self.stalled = stalled
        # Nothing came back at all: on a reused idle connection the server had closed it.
        self.before_answer = before_answer


class RangedAnswer(Protocol):
    """The head of an answer to a ranged GET, and its body for `stream_into`."""

    @property
    def status(self) -> int: ...

    @property
    def headers(self) -> Mapping[str, str]:  # looked up by lower-case name
        ...

    @property
    def url(self) -> str: ...

    async def stream_into(self, span: Span, write_at: WriteAt) -> None:
        """Write the body into `span` until the span or the body ends; StreamError when the
        connection fails first (what arrived is written), or whatever `write_at` raised."""

    async def raise_for_status(self) -> None:
        """HttpError with the body's first bytes, for an answer that is not 2xx."""


class ResponseAnswer:
    """A ranged answer that came through aiohttp (a proxy, a redirect, a chunked body)."""

    def __init__(
        self, response: aiohttp.ClientResponse, *, buffer_bytes: int, read_timeout_s: float
    ) -> None:
        self._response = response
        self._buffer_bytes = buffer_bytes
        self._read_timeout_s = read_timeout_s

    @property
    def status(self) -> int:
        return self._response.status

    @property
    def headers(self) -> Mapping[str, str]:
        return self._response.headers

    @property
    def url(self) -> str:
        return str(self._response.url)

    async def raise_for_status(self) -> None:
        await raise_for_status(self._response)

    async def stream_into(self, span: Span, write_at: WriteAt) -> None:
        response = self._response
        chunks: list[bytes] = []
        buffered = 0
        offset = span.position
        try:
            while span.position < span.end:
                try:
                    chunk = await response.content.readany()
                except TimeoutError:
                    # No byte for the client's read timeout: this connection is dropped, and
                    # the rest of its range fetched again.
                    raise StreamError(
                        f"no bytes for {self._read_timeout_s:g} s", stalled=True
                    ) from None
                except NETWORK_ERRORS as error:
                    raise StreamError(f"connection lost ({type(error).__name__})") from None
                if not chunk:
                    break
                room = span.end - span.position
                if len(chunk) > room:
                    chunk = chunk[:room]
                chunks.append(chunk)
                buffered += len(chunk)
                span.position += len(chunk)
                if buffered >= self._buffer_bytes:
                    write_at(offset, *chunks)
                    offset, chunks, buffered = span.position, [], 0
        except StreamError:
            response.close()
            if chunks:
                write_at(offset, *chunks)
            raise
        if chunks:
            write_at(offset, *chunks)
        # The loop ends at the span's end, or at the body's (aiohttp raises if the connection
        # closed before the Content-Length); a short body is the caller's to judge.
        if not response.content.at_eof():
            response.close()  # another connection took the rest of this range
