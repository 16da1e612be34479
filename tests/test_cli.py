import subprocess
import sys

from ignition import __version__


def test_version_is_printed_by_the_console_entry() -> None:
    result = subprocess.run(
        [sys.executable, "-m", "ignition", "--version"], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip() == f"ignition {__version__}"
