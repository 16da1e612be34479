"""What many test modules need and no test module should copy: free ports, waiting for a
condition, probing an HTTP endpoint, requiring a system tool, retrying without waiting."""

from __future__ import annotations

import os
import shutil
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from typing import Any

import pytest

from ignition._http import RetryPolicy


async def _no_wait(_: float) -> None:
    return None


# Retries without waiting: every retry path runs, none of them slows the suite down.
FAST_RETRY = RetryPolicy(first_delay_s=0.0, max_delay_s=0.0, sleep=_no_wait)


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now (the OS picks it)."""
    with socket.socket() as probe:
        probe.bind((host, 0))
        port: int = probe.getsockname()[1]
        return port


def wait_for(
    predicate: Callable[[], Any], timeout_s: float, what: str, *, interval_s: float = 0.1
) -> Any:
    """Poll `predicate` every `interval_s` until it returns something truthy; return that value."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def http_status(url: str, headers: dict[str, str] | None = None, timeout_s: float = 5) -> int:
    """The status code a GET of `url` gets (errors included); OSError when nothing answers."""
    request = urllib.request.Request(url, headers=headers or {})  # noqa: S310 - loopback
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:  # noqa: S310
            return int(response.status)
    except urllib.error.HTTPError as error:
        return error.code


def answers(url: str) -> bool:
    """Whether `url` answers below 500 (a 401 counts: the service is up, auth is on)."""
    try:
        return http_status(url, timeout_s=2) < 500
    except OSError:
        return False


def require_tool(name: str) -> str:
    """The tool's path; skips the test when it is missing, fails when CI requires tools."""
    found = shutil.which(name)
    if found is None:
        if os.environ.get("IGNITION_TEST_REQUIRE_TOOLS") == "1":
            pytest.fail(f"{name} is required (IGNITION_TEST_REQUIRE_TOOLS=1)")
        pytest.skip(f"{name} is not installed")
    return found
