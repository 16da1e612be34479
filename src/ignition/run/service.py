"""What the supervisor needs to know to run one child process; builders return one of these."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class ServiceSpec:
    """A supervised child process.

    `argv` must never hold a secret (every user on the box can read it with `ps`): builders put
    secrets in 0600 files they write themselves and pass only the file's path.
    """

    name: str
    argv: tuple[str, ...]
    env: dict[str, str] = field(default_factory=dict)
    # The user's variables this child keeps beyond the basics every child gets (run/child_env.py);
    # the lowest priority, below the basics, the telemetry opt-out and `env`.
    inherited: dict[str, str] = field(default_factory=dict)
    cwd: Path | None = None
    # Polled until it answers; any HTTP status below 500 (401 included: auth is on) means ready.
    ready_url: str | None = None
    # Shown to the user once the service is ready (the public URL, not the internal one).
    public_url: str | None = None
    # False: the child's output goes to the start-up log file only, not to stdout (RunPod's
    # container log). For third-party banners (copyparty's 60 lines, Caddy's JSON) that would
    # bury the access block and say misleading things ("available @ http://<ip>").
    console: bool = True
