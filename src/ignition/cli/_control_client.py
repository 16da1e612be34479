"""What the control-channel commands share: find the supervisor, ask it, explain its absence."""

from __future__ import annotations

import sys
from typing import Any

from ignition.run import control
from ignition.settings import Settings

# 3 is "unknown" to Docker and to monitoring conventions alike: nobody to ask.
NOT_RUNNING = 3


def ask(settings: Settings, message: dict[str, Any], *, timeout_s: float) -> dict[str, Any] | None:
    """The supervisor's reply, or None (after saying why) when it is not running."""
    try:
        return control.request(settings.control_socket, message, timeout_s=timeout_s)
    except control.SupervisorNotRunningError:
        print(
            f"ignition is not running here (nothing answers on {settings.control_socket}); "
            "`ignition start` is the container's entrypoint",
            file=sys.stderr,
        )
    except PermissionError:
        print(f"permission denied on {settings.control_socket}: run as root", file=sys.stderr)
    except TimeoutError:
        print("the supervisor did not answer in time", file=sys.stderr)
    return None
