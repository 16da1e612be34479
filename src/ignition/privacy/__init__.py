"""Privacy lite: block telemetry hosts, opt children out of tracking, log outbound connections.

    blocklist.txt  the telemetry hosts, commented by source
    hosts.py       the blocklist as one marked block in the hosts file
    optout.py      environment variables that switch tracking off in child processes
    monitor.py     samples of outbound connections appended to the connection log
    summary.py     the log folded into rows for `ignition connections`

The runtime calls `apply(settings)` before any download and runs
`monitor.monitor_forever(settings)` as a task; PRIVACY_MODE=off turns both into no-ops.
"""

from __future__ import annotations

import logging

from ignition.privacy.hosts import load_blocklist, write_block
from ignition.privacy.optout import optout_env
from ignition.settings import Settings

__all__ = ["apply"]

_log = logging.getLogger(__name__)


def apply(settings: Settings) -> dict[str, str]:
    """Write the blocklist into the hosts file and return the opt-out env for children.

    Never raises for an unwritable or missing hosts file (it logs one warning). With
    PRIVACY_MODE=off it touches nothing and returns {}.
    """
    if not settings.privacy_mode:
        return {}
    domains = load_blocklist()
    if write_block(settings.hosts_file, domains):
        _log.info("privacy: %d telemetry hosts blocked in %s", len(domains), settings.hosts_file)
    return optout_env()
