"""`ignition lock --from-running`: the manifest and lock of the models on this pod now.

Ignition records every file it verifies (place/manifest.py) with its sha256 and the download
endpoint it came from; each such file becomes a manifest entry that names exactly that file
(version and file id on CivitAI, repo, revision and path on Hugging Face, with its folder) and a
lock record with its recorded size and sha256. Nothing is fetched and, for files whose size and
mtime still match their record, nothing is read. Files without a record (copied in by hand,
downloaded by ComfyUI-Manager) have no known source: they are listed, not locked.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import yaml

from ignition.errors import SpecError
from ignition.pin.lockfile import LockedModel, Lockfile, inputs_of
from ignition.place.install import sha256_file
from ignition.place.manifest import Manifest, ManifestRecord, manifest_dir
from ignition.place.store import models_root
from ignition.records import CivitaiRef, HuggingFaceRef
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
        body = yaml.safe_dump(document, sort_keys=False, default_flow_style=False, width=1000)
        return "# What this pod had: written by `ignition lock --from-running`.\n" + body


def snapshot(settings: Settings, *, origin: str) -> Snapshot:
    """Every recorded model under the models root(s), as a manifest (named `origin`) and lock."""
    civitai: list[str] = []
    huggingface: list[str] = []
    models: list[LockedModel] = []
    unlocked: list[str] = []
    roots = sorted({models_root(settings), settings.models_dir})
    for root in roots:
        records = Manifest(root)
        recorded = dict(records.items())
        for relative in _files_under(root):
            record = recorded.get(relative)
            why = _why_not_lockable(records, relative, record)
            if why is None:
                assert record is not None
                try:
                    entry, model = _locked(relative, record)
                except SpecError as error:
                    why = f"{error.message}; not locked"
            if why is not None:
                unlocked.append(f"{root / relative}: {why}")
                continue
            (civitai if model.source == "civitai" else huggingface).append(entry)
            models.append(model)
    manifest = PodManifest(origin=origin, civitai=tuple(civitai), huggingface=tuple(huggingface))
    return Snapshot(manifest, Lockfile(inputs_of(manifest, {}), tuple(models)), unlocked)


def _files_under(root: Path) -> list[str]:
    if not root.is_dir():
        return []
    state = manifest_dir(root)
    return sorted(
        path.relative_to(root).as_posix()
        for path in root.rglob("*")
        if path.is_file() and not path.is_relative_to(state)
    )


def _why_not_lockable(
    manifest: Manifest, relative: str, record: ManifestRecord | None
) -> str | None:
    if "/" not in relative:
        return "not in a model folder; not locked"
    if record is None:
        return "not downloaded by Ignition, no source known; not locked"
    if not record.source:
        return "recorded without its source (downloaded by an older Ignition); not locked"
    if (
        manifest.trusted(relative) is None
        and sha256_file(manifest.root / relative) != record.sha256
    ):
        return "changed since Ignition verified it; not locked"
    return None


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
