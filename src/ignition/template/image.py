"""Which Docker image the template runs: the one this project's own workflow publishes.

`.github/workflows/image.yml` pushes `ghcr.io/<owner>/<repo>` from the GitHub repository it runs
in, so the checkout Ignition is installed from names the image through its `origin` remote.
Outside a GitHub checkout (an installed wheel, the image itself) only the placeholder is left,
and the command warns that nobody publishes it.
"""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path

PLACEHOLDER_IMAGE = "ghcr.io/comfy-ignition/ignition:latest"

# https://github.com/Owner/Repo(.git), git@github.com:Owner/Repo.git, ssh://git@github.com/...
_GITHUB_REMOTE = re.compile(
    r"github\.com[:/](?P<owner>[A-Za-z0-9_.-]+)/(?P<repo>[A-Za-z0-9_.-]+?)(?:\.git)?/?$"
)


def published_image(checkout: Path) -> str | None:
    """`ghcr.io/<owner>/<repo>:latest` for the GitHub checkout holding `checkout`, else None."""
    git = shutil.which("git")
    if git is None:
        return None
    try:
        answer = subprocess.run(
            [git, "-C", str(checkout), "remote", "get-url", "origin"],
            env={"LC_ALL": "C"},  # git needs none of the tokens this process may hold
            capture_output=True,
            text=True,
            timeout=5,
            check=False,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    match = _GITHUB_REMOTE.search(answer.stdout.strip()) if answer.returncode == 0 else None
    if match is None:
        return None
    # GHCR names are lower case; the workflow's metadata action lowers them the same way.
    return f"ghcr.io/{match['owner'].lower()}/{match['repo'].lower()}:latest"


def choose_image(flag: str | None, setting: str | None, checkout: Path) -> str:
    """--image, else IGNITION_IMAGE, else the image this checkout's workflow publishes, else
    the placeholder."""
    return flag or setting or published_image(checkout) or PLACEHOLDER_IMAGE


def placeholder_warning(image: str) -> str | None:
    if image != PLACEHOLDER_IMAGE:
        return None
    return (
        f"the image {image} is a placeholder nobody publishes, so RunPod could not pull it: "
        "pass --image ghcr.io/OWNER/REPO:latest (what .github/workflows/image.yml pushes from "
        "your GitHub repository) or set IGNITION_IMAGE"
    )
