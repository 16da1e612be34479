"""Run an aiohttp app on a loopback address in a thread with its own event loop."""

import asyncio
import ssl
import threading
from collections import Counter

from aiohttp import web


class ServerThread:
    def __init__(
        self, app: web.Application, host: str = "127.0.0.1", tls: ssl.SSLContext | None = None
    ) -> None:
        self.app = app
        self.host = host
        self.tls = tls
        self.port = 0
        self._loop = asyncio.new_event_loop()
        # A client hanging up cancels its handler, so a stalled response ends with its connection.
        self._runner = web.AppRunner(
            app, access_log=None, handler_cancellation=True, shutdown_timeout=0.5
        )
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @property
    def url(self) -> str:
        return f"{'https' if self.tls else 'http'}://{self.host}:{self.port}"

    def start(self) -> "ServerThread":
        self._thread.start()
        if not self._ready.wait(10):
            raise RuntimeError(f"fake server on {self.host} did not start")
        return self

    def stop(self) -> None:
        asyncio.run_coroutine_threadsafe(self._runner.cleanup(), self._loop).result(10)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)
        self._loop.close()

    def _run(self) -> None:
        asyncio.set_event_loop(self._loop)
        self._loop.run_until_complete(self._setup())
        self._ready.set()
        self._loop.run_forever()

    async def _setup(self) -> None:
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, 0, ssl_context=self.tls)
        await site.start()
        self.port = self._runner.addresses[0][1]


class Counters:
    """Requests per path and bytes served: re-run and resume tests read these."""

    def __init__(self) -> None:
        self.requests: Counter[str] = Counter()
        self.bytes_served = 0
        self.authorization_seen: list[str] = []
        self.user_agents: list[str] = []

    def count(self, request: web.Request) -> None:
        self.requests[request.path] += 1
        self.user_agents.append(request.headers.get("User-Agent", ""))
        if "Authorization" in request.headers:
            self.authorization_seen.append(request.path)


class Throttle:
    """Answer the next N requests to a path with 429 (no Retry-After, as CivitAI does)."""

    def __init__(self) -> None:
        self.remaining: Counter[str] = Counter()
        self.retry_after: str | None = None

    def check(self, request: web.Request) -> web.Response | None:
        if self.remaining[request.path] <= 0:
            return None
        self.remaining[request.path] -= 1
        headers = {"Retry-After": self.retry_after} if self.retry_after else {}
        return web.json_response({"error": "Too Many Requests"}, status=429, headers=headers)
