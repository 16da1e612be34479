"""A presigned object store on loopback: Range, throttling and switchable faults, bytes counted.

It behaves like CivitAI's R2/B2 buckets and HF's CDN (PROTOCOLS.md): objects are served from
`/blobs/{key}` with single-range support (206 + Content-Range, 416 with `bytes */size`), links
are presigned (`?X-Amz-Signature=…`) and can expire (403 with an S3-style XML body), and an
Authorization header reaching the store is refused with 400. `put` returns what an API host's
redirect `Location` points at.

Throttling mirrors a CDN: a per-connection rate and a total link rate, both paced on a virtual
clock so that timing is steady without bursts. Faults are armed per test on `storage.faults`;
each fires a bounded number of times so every test ends.

Objects are `Blob`s: in-memory bytes for tests, or a deterministic pattern (several GB, no disk)
for benchmarks. The CivitAI and HF fakes `put` objects here and redirect to the link it returns.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import ssl
import time
from dataclasses import dataclass, field
from typing import Protocol

from aiohttp import web

from fakes.server import Counters, ServerThread

_PATTERN_BLOCK = 1 << 20


class Blob(Protocol):
    size: int

    def read(self, offset: int, length: int) -> bytes | memoryview: ...

    def sha256(self) -> str: ...


class BytesBlob:
    def __init__(self, data: bytes) -> None:
        self.data = data
        self.size = len(data)

    def read(self, offset: int, length: int) -> bytes | memoryview:
        return memoryview(self.data)[offset : offset + length]

    def sha256(self) -> str:
        return hashlib.sha256(self.data).hexdigest()


class PatternBlob:
    """`size` bytes from a seed: 1 MiB of noise, each block stamped with its index (no repeats)."""

    def __init__(self, size: int, seed: int) -> None:
        self.size = size
        self.seed = seed
        self._noise = random.Random(seed).randbytes(_PATTERN_BLOCK)
        self._digest: str | None = None

    def _block(self, index: int) -> bytes:
        return index.to_bytes(8, "big") + self._noise[8:]

    def read(self, offset: int, length: int) -> bytes | memoryview:
        end = min(offset + length, self.size)
        parts: list[bytes] = []
        while offset < end:
            index, within = divmod(offset, _PATTERN_BLOCK)
            take = min(_PATTERN_BLOCK - within, end - offset)
            parts.append(self._block(index)[within : within + take])
            offset += take
        return parts[0] if len(parts) == 1 else b"".join(parts)

    def sha256(self) -> str:
        if self._digest is None:
            digest = hashlib.sha256()
            for offset in range(0, self.size, _PATTERN_BLOCK):
                digest.update(self.read(offset, _PATTERN_BLOCK))
            self._digest = digest.hexdigest()
        return self._digest


@dataclass
class Faults:
    """Switchable misbehaviour. Offsets are absolute positions in the object."""

    # `statuses` and `drops` start once this many requests went through unharmed.
    after_requests: int = 0
    # Answer the next requests with these statuses, one each (503, 500, 429 …), no Retry-After.
    statuses: list[int] = field(default_factory=list)
    # Close the connection right after sending the byte before each offset, once per offset.
    cut_at: list[int] = field(default_factory=list)
    # The next N GETs send their headers, then close the connection without a body byte.
    drops: int = 0
    # Stop sending (keep the connection open) when reaching each offset, once per offset.
    stall_at: list[int] = field(default_factory=list)
    stall_s: float = 30.0
    # Flip the byte at this offset in the next `corrupt_times` responses that carry it.
    corrupt_at: int | None = None
    corrupt_times: int = 0
    # Answer every Range request with 200 and the whole object.
    ignore_range: bool = False
    # Send no Content-Length (chunked) and ignore Range.
    no_length: bool = False
    # A link stops working (403 "Request has expired") once this many bytes went out under it.
    expire_after_bytes: int | None = None
    # Hang up without answering on this many requests that come on a connection which already
    # answered one: a keep-alive connection the server dropped just as the client reused it.
    hangup_reused: int = 0
    # Answer with "Connection: close": no keep-alive.
    no_keep_alive: bool = False
    # Send at most this many bytes per range (Content-Range says which), as some CDNs do.
    range_cap: int | None = None


class _Pace:
    """A virtual clock: each reservation of n bytes pushes `next_free` by n / rate."""

    def __init__(self, rate: float | None) -> None:
        self.rate = rate
        self.next_free = 0.0

    async def take(self, n: int) -> None:
        if not self.rate:
            return
        loop = asyncio.get_running_loop()
        now = loop.time()
        start = max(now, self.next_free)
        self.next_free = start + n / self.rate
        if start > now:
            await asyncio.sleep(start - now)


class FakeStorage:
    """The object store on `host` (127.0.0.2, so that API hosts on 127.0.0.1 are other hosts)."""

    def __init__(
        self,
        host: str = "127.0.0.2",
        *,
        per_connection_bps: float | None = None,
        total_bps: float | None = None,
        chunk_bytes: int = 64 * 1024,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        self.blobs: dict[str, Blob] = {}
        self.faults = Faults()
        self.counters = Counters()  # requests per path, bytes served, Authorization seen
        self.statuses: list[int] = []
        self.links_issued = 0
        self.active = 0
        self.max_active = 0
        self.connections: set[object] = set()  # client (host, port) pairs seen: TCP connections
        # Monotonic times of the first and the latest body bytes sent (0.0: none yet).
        self.sent_span = (0.0, 0.0)
        self.chunk_bytes = chunk_bytes
        self.throttle(per_connection_bps, total_bps)
        self._served_by_link: dict[str, int] = {}
        app = web.Application()
        app.router.add_route("GET", "/blobs/{key}", self._serve)
        app.router.add_route("HEAD", "/blobs/{key}", self._serve)
        self.server = ServerThread(app, host=host, tls=tls)

    def throttle(self, per_connection_bps: float | None, total_bps: float | None) -> None:
        """Cap each connection and the whole link (bytes/s; None: unlimited)."""
        self.per_connection_bps = per_connection_bps
        self._link = _Pace(total_bps)

    def put(self, key: str, data: Blob | bytes) -> str:
        """Store an object; returns a fresh presigned URL, as a download endpoint's Location."""
        self.blobs[key] = BytesBlob(data) if isinstance(data, bytes) else data
        self.links_issued += 1
        return (
            f"{self.server.url}/blobs/{key}?X-Amz-Expires=86400"
            f"&X-Amz-Signature=sig{self.links_issued}&response-content-disposition=attachment"
        )

    # --- the handler ---------------------------------------------------------------------------
    async def _serve(self, request: web.Request) -> web.StreamResponse:
        self.counters.count(request)
        assert request.transport is not None
        peer = request.transport.get_extra_info("peername")
        if self.faults.hangup_reused and peer in self.connections:
            self.faults.hangup_reused -= 1
            request.transport.close()
            return web.Response(status=503)  # never sent: the connection is gone
        self.connections.add(peer)
        blob = self.blobs.get(request.match_info["key"])
        signature = request.query.get("X-Amz-Signature", "")
        status, body = self._refusal(request, blob, signature)
        if status:
            self.statuses.append(status)
            return web.Response(status=status, text=body, content_type="application/xml")
        assert blob is not None
        faults = self.faults
        start, end = 0, blob.size
        headers = {"ETag": f'"{blob.sha256()[:32]}"', "Accept-Ranges": "bytes"}
        range_header = request.headers.get("Range")
        status = 200
        if range_header and not (faults.ignore_range or faults.no_length):
            parsed = _parse_range(range_header, blob.size)
            if parsed is None:
                self.statuses.append(416)
                return web.Response(status=416, headers={"Content-Range": f"bytes */{blob.size}"})
            start, end = parsed
            if faults.range_cap is not None:
                end = min(end, start + faults.range_cap)
            status = 206
            headers["Content-Range"] = f"bytes {start}-{end - 1}/{blob.size}"
        self.statuses.append(status)
        response = web.StreamResponse(status=status, headers=headers)
        response.content_type = "application/octet-stream"
        if faults.no_keep_alive:
            response.force_close()
        if faults.no_length:
            response.enable_chunked_encoding()
        else:
            response.content_length = end - start
        await response.prepare(request)
        if request.method == "HEAD":
            return response
        self.active += 1
        self.max_active = max(self.max_active, self.active)
        try:
            if faults.drops > 0 and self._harm_now():
                faults.drops -= 1
                assert request.transport is not None
                request.transport.close()
                return response
            await self._send(request, response, blob, signature, start, end)
        except ConnectionResetError:
            pass  # the client hung up: it took what it needed, or gave up on a stall
        finally:
            self.active -= 1
        return response

    def _harm_now(self) -> bool:
        return sum(self.counters.requests.values()) > self.faults.after_requests

    def _refusal(self, request: web.Request, blob: Blob | None, signature: str) -> tuple[int, str]:
        faults = self.faults
        if "Authorization" in request.headers:
            # What R2/S3 say when a client forwards the API token to presigned storage.
            return 400, "<Error><Code>InvalidArgument</Code>Missing x-amz-content-sha256</Error>"
        if blob is None:
            return 404, "<Error><Code>NoSuchKey</Code></Error>"
        if faults.statuses and self._harm_now():
            return faults.statuses.pop(0), "<Error><Code>ServiceUnavailable</Code></Error>"
        limit = faults.expire_after_bytes
        if limit is not None and self._served_by_link.get(signature, 0) >= limit:
            return 403, "<Error><Code>AccessDenied</Code><Message>Request has expired</Message>"
        return 0, ""

    async def _send(
        self,
        request: web.Request,
        response: web.StreamResponse,
        blob: Blob,
        signature: str,
        start: int,
        end: int,
    ) -> None:
        faults = self.faults
        pace = _Pace(self.per_connection_bps)
        position = start
        while position < end:
            length = min(self.chunk_bytes, end - position)
            cut = next((o for o in faults.cut_at if position < o <= position + length), None)
            stall = next((o for o in faults.stall_at if position <= o < position + length), None)
            if cut is not None:
                length = cut - position
            elif stall is not None:
                length = stall - position
            if length:
                data = blob.read(position, length)
                at = faults.corrupt_at
                if faults.corrupt_times and at is not None and position <= at < position + length:
                    faults.corrupt_times -= 1
                    flipped = bytearray(data)
                    flipped[at - position] ^= 0xFF
                    data = bytes(flipped)
                await pace.take(length)
                await self._link.take(length)
                await response.write(data)
                self.counters.bytes_served += length
                self.sent_span = (self.sent_span[0] or time.monotonic(), time.monotonic())
                self._served_by_link[signature] = self._served_by_link.get(signature, 0) + length
                position += length
            if cut is not None:
                faults.cut_at.remove(cut)
                assert request.transport is not None
                request.transport.close()
                return
            if stall is not None:
                faults.stall_at.remove(stall)
                await asyncio.sleep(faults.stall_s)
                assert request.transport is not None
                request.transport.close()
                return
        await response.write_eof()


def _parse_range(header: str, size: int) -> tuple[int, int] | None:
    """`bytes=a-b`, `bytes=a-` or `bytes=-n` → [start, end); None when unsatisfiable (416)."""
    unit, _, spec = header.partition("=")
    first, _, last = spec.split(",")[0].strip().partition("-")
    if unit.strip() != "bytes":
        return 0, size
    if not first:
        count = int(last)
        return (max(size - count, 0), size) if count and size else None
    start = int(first)
    end = min(int(last) + 1, size) if last else size
    return (start, end) if start < size and start < end else None
