"""A tiny ComfyUI stand-in for proxy tests: /system_stats, /view, a websocket /ws, and /_request.

Run it as a child process (`python comfyui_ws.py --host 127.0.0.1 --port 0`); it prints the port
it bound as its first stdout line. `/_request` echoes what reached the upstream (path, Host,
whether Authorization arrived), so tests can check what the proxy forwards.
"""

from __future__ import annotations

import argparse
import asyncio
import signal

from aiohttp import WSMsgType, web

# The smallest valid PNG (1x1), standing in for a generated image.
PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360000002000100e221bc330000000049454e44ae426082"
)


async def system_stats(_request: web.Request) -> web.Response:
    return web.json_response({"system": {"comfyui_version": "standin"}, "devices": []})


async def view(_request: web.Request) -> web.Response:
    return web.Response(body=PNG, content_type="image/png")


async def echo_request(request: web.Request) -> web.Response:
    return web.json_response(
        {
            "path_qs": request.path_qs,
            "host": request.host,
            "authorization": "Authorization" in request.headers,
        }
    )


async def websocket(request: web.Request) -> web.WebSocketResponse:
    ws = web.WebSocketResponse()
    await ws.prepare(request)
    sid = request.query.get("clientId", "standin")
    await ws.send_json({"type": "status", "data": {"sid": sid}})
    async for message in ws:
        if message.type == WSMsgType.TEXT:
            await ws.send_str(message.data)
        elif message.type == WSMsgType.BINARY:
            await ws.send_bytes(message.data)
    return ws


def make_app() -> web.Application:
    app = web.Application()
    app.router.add_get("/system_stats", system_stats)
    app.router.add_get("/view", view)
    app.router.add_get("/ws", websocket)
    app.router.add_route("*", "/_request", echo_request)
    app.router.add_route("*", "/", echo_request)
    return app


async def serve(host: str, port: int) -> None:
    runner = web.AppRunner(make_app(), access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, host, port)
    await site.start()
    bound = runner.addresses[0][1]
    print(bound, flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    await runner.cleanup()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0)
    args = parser.parse_args()
    asyncio.run(serve(args.host, args.port))


if __name__ == "__main__":
    main()
