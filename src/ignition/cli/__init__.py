"""`ignition` command line: one module per command, registered here and nowhere else.

Each command module exposes `register(subparsers)`, which adds its parser and sets `handler`
to a function taking the parsed namespace and returning the exit code.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from ignition import __version__
from ignition.errors import ConfigError, IgnitionError

# Imported by name, and only the one being run: `ignition status` (the image's HEALTHCHECK,
# every 30 s) must not pay for the aiohttp/jsonschema imports of commands it doesn't run.
_COMMANDS: tuple[str, ...] = (
    # one command module per line, in the order `ignition --help` lists them
    "start",
    "restart",
    "stop",
    "status",
    "download",
    "lock",
    "verify",
    "catalog",
    "template",
    "connections",
    "nuke",
)


def build_parser(only: str | None = None) -> argparse.ArgumentParser:
    """The whole CLI, or (`only`) just that command: enough to parse and run it."""
    parser = argparse.ArgumentParser(
        prog="ignition",
        description="Provision models and run ComfyUI on a RunPod pod.",
    )
    parser.add_argument("--version", action="version", version=f"ignition {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name in (only,) if only in _COMMANDS else _COMMANDS:
        module = importlib.import_module(f"ignition.cli.{name}")
        module.register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    parser = build_parser(only=arguments[0] if arguments else None)
    args = parser.parse_args(arguments)
    try:
        code: int = args.handler(args)
    except IgnitionError as error:
        print(f"error [{error.code}]: {error}", file=sys.stderr)
        return 2
    except ValidationError as error:
        # Which variable and why, never pydantic's full text: it repeats the value it rejected.
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            print(f"error [{ConfigError.code}]: {where}: {problem['msg']}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        return 130
    return code
