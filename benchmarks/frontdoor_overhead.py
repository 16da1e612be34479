"""What the ComfyUI front door costs: latency through Caddy vs direct, start-up, login, shutdown.

    PYTHONPATH=src python benchmarks/frontdoor_overhead.py [--requests 2000]

Starts the ComfyUI stand-in (tests/standins/comfyui_ws.py) and the real Caddy on loopback, in a
temporary run dir, and prints medians and 95th percentiles in milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import http.client
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import aiohttp
import psutil

from ignition import credentials
from ignition.run import frontdoor
from ignition.settings import load_settings

STANDIN = Path(__file__).resolve().parent.parent / "tests" / "standins" / "comfyui_ws.py"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def timings_ms(port: int, path: str, headers: dict[str, str], count: int) -> list[float]:
    """Sequential GETs on one keep-alive connection, as a script polling ComfyUI would."""
    connection = http.client.HTTPConnection("127.0.0.1", port)
    result = []
    for _ in range(count):
        start = time.perf_counter()
        connection.request("GET", path, headers=headers)
        response = connection.getresponse()
        response.read()
        result.append((time.perf_counter() - start) * 1000)
        assert response.status == 200, response.status
    connection.close()
    return result


def once_ms(port: int, headers: dict[str, str]) -> float:
    return timings_ms(port, "/system_stats", headers, 1)[0]


def report(name: str, ms: float) -> None:
    print(f"{name:<38} {ms:8.1f} ms")


def summary(name: str, values: list[float]) -> None:
    p95 = statistics.quantiles(values, n=20)[-1]
    print(f"{name:<34} median {statistics.median(values):7.3f} ms   p95 {p95:7.3f} ms")


async def shutdown_with_open_websocket_s(
    url: str, token: str, caddy: subprocess.Popen[bytes]
) -> float:
    async with (
        aiohttp.ClientSession() as session,
        session.ws_connect(f"{url}/ws?clientId=b&token={token}") as ws,
    ):
        await ws.receive_json()
        start = time.perf_counter()
        caddy.terminate()
        await asyncio.to_thread(caddy.wait)
        return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        settings = load_settings(
            workspace=root / "ws",
            run_dir=root / "run",
            comfyui_port=free_port(),
            comfyui_internal_port=free_port(),
        )
        _, upstream_port = frontdoor.comfyui_bind(settings)
        upstream = subprocess.Popen(
            [sys.executable, str(STANDIN), "--port", str(upstream_port)], stdout=subprocess.PIPE
        )
        assert upstream.stdout is not None
        upstream.stdout.readline()
        start = time.perf_counter()
        spec = frontdoor.frontdoor_service(settings, listen_host="127.0.0.1")
        generated = time.perf_counter() - start
        assert spec is not None
        start = time.perf_counter()
        caddy = subprocess.Popen(
            spec.argv, env={**os.environ, **spec.env}, stderr=subprocess.DEVNULL
        )
        while True:
            try:
                with socket.create_connection(("127.0.0.1", settings.comfyui_port), 0.1):
                    break
            except OSError:
                time.sleep(0.005)
        listening = time.perf_counter() - start
        token = credentials.comfyui_api_token(settings).value
        password = credentials.comfyui_password(settings).value
        basic = "Basic " + base64.b64encode(f"admin:{password}".encode()).decode()
        try:
            port = settings.comfyui_port
            report(f"config generation (bcrypt cost {frontdoor.BCRYPT_COST})", generated * 1000)
            report("caddy start to listening", listening * 1000)
            report("first Basic login (bcrypt verify)", once_ms(port, {"Authorization": basic}))
            report("next Basic login (hash cache)", once_ms(port, {"Authorization": basic}))
            n = args.requests
            print(f"GET /system_stats x {n}, one keep-alive connection:")
            summary("  direct to the stand-in", timings_ms(upstream_port, "/system_stats", {}, n))
            summary(
                "  through Caddy, Bearer",
                timings_ms(
                    settings.comfyui_port, "/system_stats", {"Authorization": f"Bearer {token}"}, n
                ),
            )
            cookie = f"{frontdoor.COOKIE_NAME}={frontdoor.session_value(token, password)}"
            summary(
                "  through Caddy, cookie",
                timings_ms(settings.comfyui_port, "/system_stats", {"Cookie": cookie}, n),
            )
            rss_mib = psutil.Process(caddy.pid).memory_info().rss / 2**20
            print(f"{'caddy resident memory after the runs':<38} {rss_mib:8.1f} MiB")
            url = f"http://127.0.0.1:{settings.comfyui_port}"
            seconds = asyncio.run(shutdown_with_open_websocket_s(url, token, caddy))
            report("SIGTERM to exit, websocket open", seconds * 1000)
        finally:
            for process in (caddy, upstream):
                process.terminate()
                process.wait()


if __name__ == "__main__":
    main()
