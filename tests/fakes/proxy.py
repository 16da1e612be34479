"""A forward HTTP proxy on loopback: it answers absolute-form requests (`GET http://host/…`)
by asking the origin itself, and records what went through it."""

import aiohttp
from aiohttp import web

from fakes.server import ServerThread

_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "host"}


class FakeProxy:
    def __init__(self) -> None:
        self.seen: list[str] = []  # the absolute URLs asked for, in order
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._forward)
        self.server = ServerThread(app, host="127.0.0.1")

    @property
    def url(self) -> str:
        return self.server.url

    async def _forward(self, request: web.Request) -> web.StreamResponse:
        target = str(request.url)
        self.seen.append(target)
        headers = {k: v for k, v in request.headers.items() if k.lower() not in _HOP_BY_HOP}
        async with (
            aiohttp.ClientSession(auto_decompress=False) as session,
            session.request(request.method, target, headers=headers, allow_redirects=False) as up,
        ):
            answer = web.StreamResponse(
                status=up.status,
                headers={k: v for k, v in up.headers.items() if k.lower() not in _HOP_BY_HOP},
            )
            await answer.prepare(request)
            async for chunk in up.content.iter_any():
                await answer.write(chunk)
            await answer.write_eof()
            return answer
