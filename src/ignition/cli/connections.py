"""`ignition connections`: the connection log as a table (remote, process, seen, count)."""

from __future__ import annotations

import argparse

from ignition.privacy.summary import summarize_file
from ignition.settings import load_settings


def register(subparsers: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    parser = subparsers.add_parser(
        "connections",
        help="summarize the outbound connections the privacy monitor logged",
        description=(
            "Read the connection log (IGNITION_CONNECTIONS_LOG) and print one row per remote "
            "address and process. Addresses are shown as logged: nothing is resolved."
        ),
        epilog="example: ignition connections",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    # rich is imported here, not at the top: every command module is imported to build the parser.
    from rich.console import Console
    from rich.table import Table

    settings = load_settings()
    console = Console()
    rows = summarize_file(settings.connections_log)
    if not rows:
        note = "" if settings.privacy_mode else " (PRIVACY_MODE is off: the monitor is not running)"
        console.print(f"No outbound connections logged in {settings.connections_log}{note}.")
        return 0
    table = Table(title=f"Outbound connections ({settings.connections_log})")
    table.add_column("Remote")
    table.add_column("Process")
    table.add_column("First seen (UTC)")
    table.add_column("Last seen (UTC)")
    table.add_column("Count", justify="right")
    for row in rows:
        table.add_row(row.remote, row.process, row.first_seen, row.last_seen, str(row.count))
    console.print(table)
    return 0
