"""The helper scripts a person types on the pod, written at every start.

/workspace is a volume mounted over whatever the image put there, so the scripts are written at
start-up rather than baked in. Each is a one-line wrapper around an `ignition` command, run by the
same interpreter as the supervisor so it finds the same installation.
"""

from __future__ import annotations

import shlex
import sys
from pathlib import Path

from ignition.atomic import write_atomic
from ignition.settings import Settings

_TEMPLATE = """#!/bin/sh
# {purpose}
# Written by `ignition start` at every container start; edits are overwritten.
exec {python} -m ignition {command} "$@"
"""


def pod_scripts(settings: Settings) -> dict[Path, tuple[str, str]]:
    """Path → (command, purpose) for every script."""
    scripts = settings.workspace / "scripts"
    return {
        scripts / "restart-comfyui.sh": (
            "restart",
            "Soft restart: ComfyUI gets a new process; models, data and the container stay.",
        ),
        scripts / "stop-pod.sh": (
            "stop",
            "Hard stop: stops ComfyUI and the file browser, runs the nuke, ends the container.",
        ),
        scripts / "privacy" / "show-connections.sh": (
            "connections",
            "Shows the outbound connections logged since the pod started.",
        ),
        settings.bin_dir / "nuke": (
            "nuke",
            "Deletes all user data and models (asks first unless given --yes).",
        ),
    }


def write_pod_scripts(settings: Settings) -> list[Path]:
    python = shlex.quote(sys.executable)
    written = []
    for path, (command, purpose) in pod_scripts(settings).items():
        path.parent.mkdir(parents=True, exist_ok=True)
        script = _TEMPLATE.format(purpose=purpose, python=python, command=command)
        write_atomic(path, script, mode=0o755, durable=False)
        written.append(path)
    return written
