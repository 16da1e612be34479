"""`ignition lock` for node packs and Python packages: each pack pinned, everything they and the
manifest's `python` entries need resolved to exact versions with hashes.

Packs are resolved as a start would (nodes_pipeline.resolve_packs) and fetched once into a
scratch folder: a registry archive gives its sha256 and a git pack its tree at the commit, and
both give their requirements.txt. Those and the `python` entries are compiled together in one
`uv pip compile --generate-hashes --python COMFYUI_PYTHON` under the installed torch, torchvision
and torchaudio (place/requirements.py); the torch trio itself stays out of the lock (it is the
image's, and a locked start never installs it).
"""

from __future__ import annotations

import asyncio
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ignition._http import (
    NETWORK_ERRORS,
    HttpClient,
    HttpError,
    describe_network_error,
    redact_url,
)
from ignition.errors import FetchError, IgnitionError, PlaceError
from ignition.fetch.pack import fetch_archive, fetch_commit
from ignition.nodes_pipeline import resolve_packs
from ignition.pin.lockfile import LockedPack, LockedPackage, LockedPython
from ignition.place.packs import unpack_archive
from ignition.place.requirements import PINNED, PackRequirements, compile_requirements
from ignition.records import ResolvedPack
from ignition.report import PackOutcome, ProvisionReport
from ignition.settings import Settings


@dataclass
class LockedNodes:
    """What could be pinned; `complete` is False when anything failed (each failure is on its
    outcome in `report.packs`, and `ignition lock` then writes nothing)."""

    packs: tuple[LockedPack, ...]
    python: LockedPython
    complete: bool


async def lock_nodes(
    settings: Settings, python: Sequence[str], report: ProvisionReport
) -> LockedNodes:
    """The packs `settings` name (COMFYUI_NODES, workflows) and the `python` entries, pinned."""
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ignition-lock-nodes-", dir=settings.tmp_dir) as tmp:
        scratch = Path(tmp)
        async with HttpClient.from_settings(settings) as client:
            resolved = await resolve_packs(client, settings, report)
            fetched = await asyncio.gather(
                *(_fetch(client, settings, pack, outcome, scratch) for pack, outcome in resolved)
            )
        items = [item for item in fetched if item is not None]
        outcomes = {name: PackOutcome(name=name, source="python") for name in python}
        report.packs.extend(outcomes.values())
        wanted = [
            PackRequirements(pack.folder, folder / "requirements.txt") for pack, folder in items
        ]
        for index, entry in enumerate(python):
            path = scratch / f"python-{index}.txt"
            path.write_text(entry + "\n", "utf-8")
            wanted.append(PackRequirements(entry, path))
        packages: tuple[LockedPackage, ...] = ()
        pins: dict[str, str] = {}
        if any(item.requirements.is_file() for item in wanted):
            failed: dict[str, IgnitionError]
            try:
                text, pins, compiled = await compile_requirements(settings, wanted, scratch)
                failed = dict(compiled)
            except IgnitionError as error:
                text, failed = "", {item.pack: error for item in wanted}
            packages = parse_compiled(text)
            for pack, outcome in resolved:
                _mark(outcome, failed.get(pack.folder))
            for name, outcome in outcomes.items():
                _mark(outcome, failed.get(name))
        else:
            for outcome in [*(o for _, o in resolved), *outcomes.values()]:
                _mark(outcome, None)
    complete = all(outcome.status in {"locked", "duplicate"} for outcome in report.packs)
    failed_folders = {o.folder for o in report.packs if o.status == "failed"}
    locked = tuple(_locked(pack) for pack, _ in items if pack.folder not in failed_folders)
    return LockedNodes(locked, LockedPython(pins, packages), complete)


def _mark(outcome: PackOutcome, error: IgnitionError | None) -> None:
    if outcome.status == "failed":
        return
    if error is not None:
        outcome.status, outcome.error, outcome.code = "failed", str(error), error.code
    else:
        outcome.status = "locked"


async def _fetch(
    client: HttpClient, settings: Settings, pack: ResolvedPack, outcome: PackOutcome, scratch: Path
) -> tuple[ResolvedPack, Path] | None:
    """The pack's files in scratch (for its requirements) and, for an archive, its sha256."""
    folder = scratch / "packs" / pack.folder
    folder.parent.mkdir(parents=True, exist_ok=True)
    try:
        if pack.source == "registry":
            archive = scratch / f"{pack.folder}.archive"
            sha256 = await fetch_archive(client, pack, archive)
            await asyncio.to_thread(unpack_archive, archive, folder)
            outcome.archive_sha256 = sha256
            return replace(pack, archive_sha256=sha256), folder
        await fetch_commit(settings, pack, folder)
        return pack, folder
    except IgnitionError as error:
        problem: IgnitionError = error
    except HttpError as error:
        problem = FetchError(f"{pack.ref.text}: the archive download answered HTTP {error.status}")
    except NETWORK_ERRORS as error:
        problem = FetchError(f"{pack.ref.text}: {describe_network_error(error)}")
    except OSError as error:
        problem = PlaceError(f"{pack.ref.text}: {error}")
    outcome.status, outcome.error, outcome.code = "failed", str(problem), problem.code
    return None


def _locked(pack: ResolvedPack) -> LockedPack:
    # A registry id pinned at a commit resolves to its repository: the lock names the clone URL.
    ref = pack.ref.name if pack.ref.kind == pack.source else pack.url
    version = pack.version if pack.source == "registry" else pack.ref.version
    return LockedPack(
        name=pack.ref.text,
        source=pack.source,
        ref=ref,
        folder=pack.folder,
        version=version,
        commit=pack.commit,
        # Informative only (a locked start asks the registry again): without the query, which
        # for a registry archive is a presigned signature that differs on every answer.
        url=redact_url(pack.url).split("?", 1)[0],
        archive_sha256=pack.archive_sha256,
    )


def parse_compiled(text: str) -> tuple[LockedPackage, ...]:
    """`uv pip compile --generate-hashes` output → packages (the torch trio left out)."""
    joined = text.replace("\\\n", " ")
    packages: list[LockedPackage] = []
    for line in joined.splitlines():
        line = line.split("#", 1)[0].strip()
        if not line or "==" not in line:
            continue
        words = line.split()
        name, _, version = words[0].partition("==")
        name = name.split("[", 1)[0]
        hashes = tuple(
            sorted(w.removeprefix("--hash=") for w in words[1:] if w.startswith("--hash="))
        )
        if name.lower() in PINNED:
            continue
        packages.append(LockedPackage(name, version.split(";", 1)[0], hashes))
    return tuple(sorted(packages, key=lambda p: p.name.lower()))
