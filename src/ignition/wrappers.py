"""The seed's shell commands (`nuke`, show-connections.sh) as thin wrappers around `ignition`.

The runtime writes them at start; each one only execs the matching `ignition` subcommand with the
interpreter Ignition runs under, so behaviour lives in one place.
"""

from __future__ import annotations

import shlex
import sys


def wrapper_script(*ignition_args: str, python: str = sys.executable) -> str:
    """Text of a POSIX sh script that runs `ignition <ignition_args> "$@"`."""
    command = shlex.join([python, "-m", "ignition", *ignition_args])
    return (
        "#!/bin/sh\n"
        f"# Written by Ignition at start: runs `ignition {' '.join(ignition_args)}`.\n"
        f'exec {command} "$@"\n'
    )
