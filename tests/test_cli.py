import subprocess
import sys

from ignition import __version__


def test_version_is_printed_by_the_console_entry() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ignition", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"ignition {__version__}"


def test_start_runs_a_command_given_after_it_instead_of_the_pod() -> None:
    """`docker run IMAGE ignition --version` arrives as `ignition start ignition --version`."""
    result = subprocess.run(
        [sys.executable, "-m", "ignition", "start", sys.executable, "-m", "ignition", "--version"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == f"ignition {__version__}"


def test_start_reports_an_unknown_command() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ignition", "start", "no-such-command-here"],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode == 127
    assert "command not found: no-such-command-here" in result.stderr


def test_every_command_help_shows_an_example() -> None:
    from ignition.cli import _COMMANDS, build_parser

    for name in _COMMANDS:
        parser = build_parser(only=name)
        subparsers = next(a for a in parser._actions if a.dest == "command")
        help_text = subparsers.choices[name].format_help()  # type: ignore[attr-defined]
        assert "example: " in help_text, name
