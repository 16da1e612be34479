"""Presigned storage on 127.0.0.2 (R2/B2/CDN): Range support, 400 if Authorization arrives."""

import re
from collections import Counter

from aiohttp import web

from fakes.server import Counters, ServerThread

_RANGE = re.compile(r"^bytes=(\d+)-(\d*)$")


class FakeStorage:
    def __init__(self) -> None:
        self.blobs: dict[str, bytes] = {}
        self.counters = Counters()
        # The next N GETs of a blob send half of it, then drop the connection.
        self.cut_short: Counter[str] = Counter()
        # The next N requests of any blob answer 503 (a storage hiccup).
        self.unavailable = 0
        app = web.Application()
        app.router.add_route("GET", "/blobs/{key}", self._blob)
        app.router.add_route("HEAD", "/blobs/{key}", self._blob)
        self.server = ServerThread(app, host="127.0.0.2")

    def put(self, key: str, data: bytes) -> str:
        """Store bytes; returns the presigned URL a download endpoint redirects to."""
        self.blobs[key] = data
        return (
            f"{self.server.url}/blobs/{key}?X-Amz-Expires=86400&X-Amz-Signature=s3cr3tsig"
            f"&response-content-disposition=attachment"
        )

    async def _blob(self, request: web.Request) -> web.StreamResponse:
        self.counters.count(request)
        if "Authorization" in request.headers:
            # What R2/S3 say when a client forwards the API token to presigned storage.
            return web.Response(status=400, text="Missing x-amz-content-sha256")
        if self.unavailable > 0:
            self.unavailable -= 1
            return web.Response(status=503, text="SlowDown")
        key = request.match_info["key"]
        data = self.blobs.get(key)
        if data is None:
            return web.Response(status=404, text="NoSuchKey")
        start, end, status = 0, len(data) - 1, 200
        match = _RANGE.match(request.headers.get("Range", ""))
        if match:
            start = int(match.group(1))
            end = min(int(match.group(2)) if match.group(2) else end, len(data) - 1)
            if start >= len(data):
                return web.Response(status=416, headers={"Content-Range": f"bytes */{len(data)}"})
            status = 206
        body = data[start : end + 1]
        headers = {"Content-Type": "application/octet-stream", "Accept-Ranges": "bytes"}
        if status == 206:
            headers["Content-Range"] = f"bytes {start}-{end}/{len(data)}"
        if request.method == "GET" and self.cut_short[key] > 0:
            self.cut_short[key] -= 1
            return await self._cut(request, body, status, headers)
        if request.method == "GET":
            self.counters.bytes_served += len(body)
        return web.Response(status=status, body=body, headers=headers)

    async def _cut(
        self, request: web.Request, body: bytes, status: int, headers: dict[str, str]
    ) -> web.StreamResponse:
        response = web.StreamResponse(status=status, headers=headers)
        response.content_length = len(body)
        await response.prepare(request)
        half = body[: len(body) // 2]
        await response.write(half)
        self.counters.bytes_served += len(half)
        assert request.transport is not None
        request.transport.close()
        return response
