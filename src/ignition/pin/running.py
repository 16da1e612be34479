"""`ignition lock --from-running`: the manifest and lock of the models on this pod now (node
packs and Python packages: pin/running_nodes.py).

Ignition records every file it verifies (place/manifest.py) with its sha256 and the download
endpoint it came from; each such file becomes a manifest entry that names exactly that file
(version and file id on CivitAI, repo, revision and path on Hugging Face, with its folder) and a
lock record with its recorded size and sha256. For those, nothing is fetched and (size and mtime
still matching the record) nothing is read. A file Ignition did not download (copied in by hand,
fetched by ComfyUI-Manager) is hashed and CivitAI asked whether it knows those bytes; Hugging
Face has no such lookup, so a file only it serves is listed as unlocked, with why.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ignition._http import NETWORK_ERRORS, HttpClient, HttpError, describe_network_error
from ignition.errors import SpecError
from ignition.pin.lockfile import LockedModel, Lockfile, inputs_of
from ignition.pin.running_nodes import snapshot_nodes
from ignition.place.install import sha256_file
from ignition.place.manifest import Manifest, ManifestRecord, manifest_dir
from ignition.place.store import models_root
from ignition.records import CivitaiRef, HuggingFaceRef
from ignition.resolve.civitai import find_by_sha256
from ignition.settings import Settings
from ignition.spec.civitai import parse_civitai_entry
from ignition.spec.huggingface import parse_huggingface_entry
from ignition.spec.manifest import MANIFEST_VERSION, PodManifest


@dataclass
class Snapshot:
    manifest: PodManifest
    lock: Lockfile
    unlocked: list[str] = field(default_factory=list)  # one line per file left out, and why

    def manifest_text(self) -> str:
        """The manifest as YAML: a header comment, then the lists; the same pod, the same bytes."""
        models: dict[str, list[str]] = {}
        if self.manifest.civitai:
            models["civitai"] = list(self.manifest.civitai)
        if self.manifest.huggingface:
            models["huggingface"] = list(self.manifest.huggingface)
        document: dict[str, object] = {"version": MANIFEST_VERSION, "models": models}
        if self.manifest.nodes:
            document["nodes"] = list(self.manifest.nodes)
        if self.manifest.python:
            document["python"] = list(self.manifest.python)
        body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)
        return "# What this pod had: written by `ignition lock --from-running`.\n" + body


async def snapshot(client: HttpClient, settings: Settings, *, origin: str) -> Snapshot:
    """Every model under the models root(s) whose source is known, as a manifest (named
    `origin`) and its lock; the others in `unlocked`, each with why."""
    civitai: list[str] = []
    huggingface: list[str] = []
    models: list[LockedModel] = []
    unlocked: list[str] = []
    for root in sorted({models_root(settings), settings.models_dir}):
        records = Manifest(root)
        recorded = dict(records.items())
        for relative in _files_under(root):
            try:
                record = await _record_for(client, settings, records, relative, recorded)
                entry, model = _locked(relative, record)
            except SpecError as error:
                unlocked.append(f"{root / relative}: {error.message}; not locked")
                continue
            (civitai if model.source == "civitai" else huggingface).append(entry)
            models.append(model)
    nodes = await snapshot_nodes(settings)
    manifest = PodManifest(
        origin=origin,
        civitai=tuple(civitai),
        huggingface=tuple(huggingface),
        nodes=nodes.nodes,
        python=nodes.python,
    )
    lock = Lockfile(inputs_of(manifest, {}), tuple(models), nodes.packs, nodes.locked_python)
    return Snapshot(manifest, lock, unlocked + nodes.unlocked)


def _files_under(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    state = manifest_dir(root)
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not path.is_relative_to(state)
    )


async def _record_for(
    client: HttpClient,
    settings: Settings,
    records: Manifest,
    relative: str,
    recorded: dict[str, ManifestRecord],
) -> ManifestRecord:
    """The file's record with its source: Ignition's own (still matching the bytes), else
    CivitAI's answer for its sha256. SpecError says why there is none."""
    if "/" not in relative:
        raise SpecError("not in a model folder")
    path = records.root / relative
    record = recorded.get(relative)
    if record is not None and record.source:
        unverified = records.trusted(relative) is None  # size or mtime moved: read the bytes
        if unverified and await asyncio.to_thread(sha256_file, path) != record.sha256:
            raise SpecError("changed since Ignition verified it")
        return record
    sha256 = await asyncio.to_thread(sha256_file, path)
    try:
        found = await find_by_sha256(client, settings, sha256)
    except HttpError as error:
        raise SpecError(
            f"not downloaded by Ignition; CivitAI answered HTTP {error.status}"
        ) from None
    except NETWORK_ERRORS as error:
        reason = describe_network_error(error)
        raise SpecError(f"not downloaded by Ignition; CivitAI unreachable ({reason})") from None
    if found is None:
        raise SpecError("not downloaded by Ignition and unknown to CivitAI by its sha256")
    version, file_id = found
    source = f"{settings.civitai_endpoint}/api/download/models/{version}?fileId={file_id}"
    return ManifestRecord(f"sha256:{sha256}", sha256, path.stat().st_size, 0, source)


def _locked(relative: str, record: ManifestRecord) -> tuple[str, LockedModel]:
    """A recorded file → (manifest entry naming exactly it, its lock record)."""
    folder, filename = relative.rsplit("/", 1)
    ref = _ref(record.source)
    if isinstance(ref, CivitaiRef):
        entry, name, source = f"{record.source}:{folder}", f"civitai:{ref.version_id}", "civitai"
    else:
        revision = "" if ref.revision == "main" else f"@{ref.revision}"
        owner, repo = ref.repo.split("/", 1)
        name = f"{owner}/{repo}{revision}/{ref.path}"
        entry, source = f"{name}:{folder}", "huggingface"
    model = LockedModel(
        name=name,
        source=source,
        url=record.source,
        folder=folder,
        filename=filename,
        size=record.size_bytes,
        sha256=record.sha256,
    )
    return entry, model


def _ref(url: str) -> CivitaiRef | HuggingFaceRef:
    try:
        if "/api/download/models/" in url:
            return parse_civitai_entry(url, None)
        ref = parse_huggingface_entry(url, None)
    except SpecError:
        ref = None
    if ref is None or ref.path is None:
        raise SpecError(f"recorded source {url!r} is neither a CivitAI nor a Hugging Face file")
    return ref
