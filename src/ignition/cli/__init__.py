"""`ignition` command line: one module per command, registered here and nowhere else.

Each command module exposes `register(subparsers)`, which adds its parser and sets `handler`
to a function taking the parsed namespace and returning the exit code.

Exit codes shared by every command: 0 done, 1 the command's own "not all fine" (documented per
command), 2 unusable flags, settings or files (one line on stderr, never a traceback),
130 interrupted (Ctrl-C), 141 the reader of stdout went away (`ignition catalog | head -3`).
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import sys
from collections.abc import Sequence

from pydantic import ValidationError

from ignition import __version__
from ignition.errors import ConfigError, IgnitionError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130
# 128 + SIGPIPE: what `yes | head -1` leaves in $PIPESTATUS, so scripts see the usual code.
EXIT_BROKEN_PIPE = 141

# Imported by name, and only the one being run: `ignition status` (the image's HEALTHCHECK,
# every 30 s) must not pay for the aiohttp/jsonschema imports of commands it doesn't run.
_COMMANDS: tuple[str, ...] = (
    # one command module per line, in the order `ignition --help` lists them
    "start",
    "serverless",
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
    args, unknown = parser.parse_known_args(arguments)
    if unknown and not getattr(args, "pass_through", False):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    # A command that hands flags on (serverless → runpod-python) gets the ones it did not know.
    args.passed_through = unknown
    try:
        code: int = args.handler(args)
        sys.stdout.flush()  # a closed pipe shows here, not at interpreter exit (a traceback)
    except IgnitionError as error:
        hint = f"\nhint: {error.hint}" if error.hint else ""
        return _fail(f"error [{error.code}]: {error.message}{hint}")
    except ValidationError as error:
        # Which variable and why, never pydantic's full text: it repeats the value it rejected.
        for problem in error.errors():
            where = ".".join(str(part) for part in problem["loc"])
            message = problem["msg"].removeprefix("Value error, ")
            prefix = f"{where}: " if where else ""
            print(f"error [{ConfigError.code}]: {prefix}{message}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        return _fail("interrupted", EXIT_INTERRUPTED)
    except BrokenPipeError:
        _quiet_stdout()
        return EXIT_BROKEN_PIPE
    except OSError as error:
        # A path the user gave that the system refuses (a file where a folder belongs, no
        # permission, a full disk): the path and the reason, no traceback.
        where = f"{error.filename}: " if error.filename else ""
        return _fail(f"error [{ConfigError.code}]: {where}{error.strerror or error}")
    return code


def _fail(line: str, code: int = EXIT_USAGE) -> int:
    # If stderr is gone too, the exit code is all that is left to say it.
    with contextlib.suppress(OSError):
        print(line, file=sys.stderr)
    return code


def _quiet_stdout() -> None:
    """Point stdout at /dev/null, so Python's final flush of the dead pipe raises nothing."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    os.dup2(devnull, sys.stdout.fileno())
    os.close(devnull)
