"""`ignition lock --from-running` for node packs and Python packages: what custom_nodes and
COMFYUI_PYTHON hold now, as exact manifest entries, locked as `ignition lock` locks them.

Packs, each folder of custom_nodes (ComfyUI's own skipped: dot-folders, `*.disabled`,
`__pycache__`, plain files):
- Ignition's record (`.ignition-pack.json`): `id@version` for a registry pack, `URL@commit` for git;
- a git clone (ComfyUI-Manager's, or by hand): `URL@commit` from its origin and HEAD;
- ComfyUI-Manager's registry install (`.tracking`): `folder@version` from its pyproject.toml;
- anything else is listed as not locked, with why.

Python packages: every distribution COMFYUI_PYTHON has now whose version differs from (or is
absent in) the baseline Ignition recorded before it first installed packs or packages there
(ComfyUI/.ignition-python-baseline.json), torch, torchvision and torchaudio excepted, as
`name==version`. Without a baseline no package is locked (and the reason is listed): the image's
own packages cannot be told apart from ones added later.

The entries are then locked through pin/nodes.py (the registry and git asked for the archive
sha256 and the requirements, one `uv pip compile --generate-hashes`); an entry that cannot be
locked is left out of both files and listed.
"""

from __future__ import annotations

import tomllib
from dataclasses import dataclass, field
from pathlib import Path

from ignition.errors import RequirementsError
from ignition.gitcli import GitFailed, run_git
from ignition.pin.lockfile import LockedPack, LockedPython
from ignition.pin.nodes import lock_nodes
from ignition.place.packs import TRACKING_NAME, custom_nodes_dir, read_record
from ignition.place.requirements import PINNED, installed_packages, read_baseline
from ignition.report import ProvisionReport
from ignition.settings import Settings

# git in a folder someone else made: no hooks, no fsmonitor, no optional locks.
_SAFE_GIT = ("--no-optional-locks", "-c", "core.fsmonitor=false", "-c", "core.hooksPath=/dev/null")


@dataclass
class NodesSnapshot:
    nodes: tuple[str, ...] = ()
    python: tuple[str, ...] = ()
    packs: tuple[LockedPack, ...] = ()
    locked_python: LockedPython = field(default_factory=LockedPython)
    unlocked: list[str] = field(default_factory=list)


async def snapshot_nodes(settings: Settings) -> NodesSnapshot:
    custom_nodes = custom_nodes_dir(settings.comfyui_base)
    unlocked: list[str] = []
    nodes = [await _entry(settings, pack_dir, unlocked) for pack_dir in _packs(custom_nodes)]
    python = await _python_entries(settings, unlocked)
    wanted = settings.model_copy(
        update={"comfyui_nodes": "\n".join(e for e in nodes if e), "comfyui_workflows": ""}
    )
    report = ProvisionReport()
    locked = await lock_nodes(wanted, python, report)
    failed = {outcome.name for outcome in report.packs if outcome.status == "failed"}
    unlocked += [f"{o.name}: {o.error}; not locked" for o in report.packs if o.name in failed]
    return NodesSnapshot(
        nodes=tuple(e for e in nodes if e and e not in failed),
        python=tuple(e for e in python if e not in failed),
        packs=locked.packs,
        locked_python=locked.python,
        unlocked=unlocked,
    )


def _packs(custom_nodes: Path) -> list[Path]:
    if not custom_nodes.is_dir():
        return []
    return sorted(
        entry
        for entry in custom_nodes.iterdir()
        if entry.is_dir()
        and not entry.name.startswith(".")
        and not entry.name.endswith(".disabled")
        and entry.name != "__pycache__"
    )


async def _entry(settings: Settings, pack_dir: Path, unlocked: list[str]) -> str:
    """The exact entry the pack in `pack_dir` was installed from; "" (and why) when unknown."""
    shown = f"custom_nodes/{pack_dir.name}"
    record = read_record(pack_dir)
    if record is not None and record.source == "registry" and record.version:
        return f"{record.pack_id}@{record.version}"
    if record is not None and record.source == "git" and record.commit:
        return f"{record.url}@{record.commit}"
    if (pack_dir / ".git").exists():
        try:
            url = (await _git(settings, pack_dir, "config", "--get", "remote.origin.url")).strip()
            commit = (await _git(settings, pack_dir, "rev-parse", "HEAD")).strip()
        except GitFailed as error:
            unlocked.append(f"{shown}: a git clone git cannot read ({error.first_line})")
            return ""
        if not url.startswith(("https://", "http://")):
            unlocked.append(f"{shown}: its origin {url!r} is not an http(s) URL; not locked")
            return ""
        return f"{url}@{commit}"
    if (pack_dir / TRACKING_NAME).is_file():
        version = _pyproject_version(pack_dir)
        if version:
            return f"{pack_dir.name}@{version}"
        unlocked.append(f"{shown}: a registry install without a version in pyproject.toml")
        return ""
    unlocked.append(f"{shown}: neither a registry install nor a git clone; not locked")
    return ""


async def _git(settings: Settings, pack_dir: Path, *args: str) -> str:
    return await run_git(settings, "", *_SAFE_GIT, *args, cwd=pack_dir)


def _pyproject_version(pack_dir: Path) -> str | None:
    try:
        document = tomllib.loads((pack_dir / "pyproject.toml").read_text("utf-8"))
        version = document["project"]["version"]
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return str(version) if isinstance(version, str | int | float) else None


async def _python_entries(settings: Settings, unlocked: list[str]) -> list[str]:
    baseline = read_baseline(settings)
    if baseline is None:
        unlocked.append(
            "python: no record of what COMFYUI_PYTHON had before Ignition first installed packs "
            "(ComfyUI/.ignition-python-baseline.json); added packages not locked"
        )
        return []
    try:
        now = await installed_packages(settings.comfyui_python)
    except RequirementsError as error:
        unlocked.append(f"python: {error}; packages not locked")
        return []
    return [
        f"{name}=={version}"
        for name, version in sorted(now.items())
        if name not in PINNED and baseline.get(name) != version
    ]
