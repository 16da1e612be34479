"""A locked start: lock records become the files to fetch, and nothing but their bytes is taken.

Each record is turned back into a ref by the same parsers the env lists use (its URL is a valid
entry), so fetch errors are explained by the source as usual. Before a locked file is fetched the
source is asked, cheaply, what it serves now (CivitAI's version API, Hugging Face's HEAD): other
bytes fail the entry "changed since locked" with both hashes and fetch nothing. A source that
states no hash is fetched and the bytes compared with the lock instead.
"""

from __future__ import annotations

from dataclasses import replace

from ignition._http import HttpClient
from ignition.comfyui_folders import normalise_folder, sanitise_filename
from ignition.errors import ChangedSinceLockedError, LockfileError, PlaceError, SpecError
from ignition.pin.lockfile import LockedModel, Lockfile
from ignition.records import FetchedFile, ModelRef, ResolvedFile, SourceName
from ignition.resolve import resolve
from ignition.settings import Settings
from ignition.spec.civitai import parse_civitai_entry
from ignition.spec.huggingface import parse_huggingface_entry


def locked_files(
    lock: Lockfile, origin: str
) -> tuple[list[ResolvedFile], list[tuple[LockedModel, LockfileError]]]:
    """Every file of the lock, pinned (expected size and sha256 are the lock's), and the
    records that cannot be used as they are (a hand-edited or hostile lock), each with why."""
    files: list[ResolvedFile] = []
    unusable: list[tuple[LockedModel, LockfileError]] = []
    for model in lock.models:
        try:
            files.append(_resolved(model, origin))
        except LockfileError as error:
            unusable.append((model, error))
    return files, unusable


def _resolved(model: LockedModel, origin: str) -> ResolvedFile:
    try:
        folder = normalise_folder(model.folder)
        if sanitise_filename(model.filename) != model.filename:
            raise SpecError(f"file name {model.filename!r} is not a plain file name")
        ref: ModelRef
        source: SourceName
        if model.source == "civitai":
            ref, source = parse_civitai_entry(model.url, folder), "civitai"
        elif model.source == "huggingface":
            ref, source = parse_huggingface_entry(model.url, folder), "huggingface"
        else:
            raise SpecError(f"unknown source {model.source!r}")
    except (SpecError, PlaceError) as error:
        raise LockfileError(f"{origin}: {model.relative}: {error.message}") from None
    return ResolvedFile(
        ref=replace(ref, text=model.name, filename=model.filename),
        source=source,
        name=model.name,
        url=model.url,
        filename=model.filename,
        folder=folder,
        expected_sha256=model.sha256,
        expected_size=model.size,
        size_estimate=model.size,
        pinned=True,
    )


async def upstream_sha256(client: HttpClient, settings: Settings, file: ResolvedFile) -> str | None:
    """What the source says it serves for a pinned file now: the lock's sha256 when it agrees,
    None when it states no hash (the bytes are compared after the fetch); other bytes raise."""
    assert file.expected_sha256 is not None
    current = [
        found.expected_sha256
        for found in await resolve(client, settings, file.ref)
        if found.filename == file.filename
    ]
    now = current[0] if current else None
    if now is None:
        return None
    if now != file.expected_sha256:
        raise changed(file, now)
    return now


def check_pinned(fetched: FetchedFile, file: ResolvedFile) -> None:
    """Bytes fetched without a published hash, against the lock."""
    if fetched.sha256 != file.expected_sha256:
        raise changed(file, fetched.sha256)


def changed(file: ResolvedFile, now: str) -> ChangedSinceLockedError:
    return ChangedSinceLockedError(
        f"{file.folder}/{file.filename} changed since locked: ignition.lock has sha256 "
        f"{file.expected_sha256}, the source now serves {now}"
    )
