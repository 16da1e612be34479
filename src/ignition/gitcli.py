"""Run the real `git` CLI for node packs, with GITHUB_TOKEN scoped to GITHUB_ENDPOINT's host.

The token travels as an `http.<endpoint>/.extraHeader` set through GIT_CONFIG_COUNT/KEY/VALUE in
the child's environment: never in argv (visible in `ps`), never in a URL (git prints remote URLs
in errors), and git applies it only to remotes under that endpoint.
Prompts are switched off, so a private repo without a token fails at once instead of hanging.
"""

from __future__ import annotations

import asyncio
import base64
from pathlib import Path
from urllib.parse import urlsplit

from ignition.settings import Settings, helper_process_env

_GIT_TIMEOUT_S = 600.0


class GitFailed(Exception):
    """git exited non-zero; `stderr` is its message (never carries the token)."""

    def __init__(self, stderr: str) -> None:
        super().__init__(stderr)
        self.stderr = stderr

    @property
    def first_line(self) -> str:
        """git's message in one line, for an error message."""
        lines = (line.strip() for line in self.stderr.splitlines())
        return next((line for line in lines if line), "git failed")[:300]


def git_env(settings: Settings, url: str) -> dict[str, str]:
    """The environment for a git child touching `url`."""
    extra = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "true", "GIT_CONFIG_NOSYSTEM": "1"}
    token = settings.github_token.get_secret_value() if settings.github_token else None
    endpoint = settings.github_endpoint.rstrip("/")
    if token and _same_host(url, endpoint):
        basic = base64.b64encode(f"x-access-token:{token}".encode()).decode()
        extra |= {
            "GIT_CONFIG_COUNT": "1",
            "GIT_CONFIG_KEY_0": f"http.{endpoint}/.extraHeader",
            "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
        }
    return helper_process_env(extra)


def _same_host(url: str, endpoint: str) -> bool:
    first, second = urlsplit(url), urlsplit(endpoint)
    return (first.scheme, first.netloc.lower()) == (second.scheme, second.netloc.lower())


async def run_git(settings: Settings, url: str, *args: str, cwd: Path | None = None) -> str:
    """`git ARGS` (about `url`) → its stdout; GitFailed with its stderr on a non-zero exit."""
    process = await asyncio.create_subprocess_exec(
        "git",
        *args,
        cwd=cwd,
        env=git_env(settings, url),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), _GIT_TIMEOUT_S)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise GitFailed(f"git {args[0]} took longer than {_GIT_TIMEOUT_S:.0f} s") from None
    if process.returncode != 0:
        raise GitFailed(err.decode("utf-8", "replace").strip())
    return out.decode("utf-8", "replace")
