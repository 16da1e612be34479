"""`ignition lock`: a manifest → its lock, fetching no model bytes the sources' APIs can vouch for.

Sizes and sha256 come from the APIs (Hugging Face's tree and HEAD, CivitAI's version JSON). Two
gaps are filled without guessing: CivitAI states sizes only rounded (sizeKB), so the download is
asked for one byte and its Content-Range gives the exact size; a file no API states a hash for
(a small non-LFS file on Hugging Face) is fetched once through the download engine and hashed.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from ignition._http import (
    NETWORK_ERRORS,
    HttpClient,
    HttpError,
    RetryPolicy,
    describe_network_error,
    redact_url,
)
from ignition.errors import FetchError, IgnitionError, PlaceError, ResolveError
from ignition.fetch import fetch_file
from ignition.fetch.progress import NoProgress
from ignition.fetch.verify import check_fetched
from ignition.pin.lockfile import LockedModel, Lockfile, inputs_of
from ignition.pin.nodes import lock_nodes
from ignition.pin.request import manifest_only
from ignition.pipeline import open_client, resolve_requested
from ignition.records import FetchRequest, HuggingFaceRef, ResolvedFile
from ignition.report import ModelOutcome, ProvisionReport
from ignition.resolve import explain_http_error
from ignition.resolve.workflow_source import load_workflow
from ignition.settings import Settings
from ignition.spec.manifest import PodManifest

_CONTENT_RANGE_TOTAL = re.compile(r"/(\d+)\s*$")
_COMMIT = re.compile(r"^[0-9a-f]{40}$")
_COMPLETES_AT_ONCE = 4


@dataclass
class LockResult:
    """The lock (None when any entry could not be locked) and, per file, what happened."""

    lock: Lockfile | None
    report: ProvisionReport


async def build_lock(
    settings: Settings, manifest: PodManifest, *, retry: RetryPolicy | None = None
) -> LockResult:
    """Resolve every model `manifest` names and pin its exact size and sha256; then its node
    packs and Python packages (pin/nodes.py).

    Only the manifest counts: env lists are not part of a lock. Any entry that fails (bad
    entry, unreachable source, a workflow model with no known source) fails the lock: a lock
    that silently leaves something out would provision less than the manifest says.
    """
    wanted = manifest_only(settings, manifest)
    report = ProvisionReport()
    async with open_client(wanted, retry) as client:
        workflow_sha256 = await workflow_hashes(client, wanted, manifest)
        resolved = await resolve_requested(client, wanted, report)
        gate = asyncio.Semaphore(_COMPLETES_AT_ONCE)

        async def one(file: ResolvedFile, outcome: ModelOutcome) -> LockedModel | None:
            async with gate:
                try:
                    return await _pin(client, wanted, file, outcome)
                except IgnitionError as error:
                    outcome.record_error(error)
                except HttpError as error:
                    outcome.record_error(explain_http_error(error, file.ref, wanted))
                except NETWORK_ERRORS as error:
                    message = f"{file.name}: {describe_network_error(error)}"
                    outcome.record_error(ResolveError(message, hint="run again"))
                return None

        pinned = await asyncio.gather(*(one(file, outcome) for file, outcome in resolved))
    models = _one_per_target([(m, o) for m, (_, o) in zip(pinned, resolved, strict=True) if m])
    for outcome in report.outcomes:
        if outcome.status == "pending":
            outcome.status = "locked"
        elif outcome.status == "skipped":  # a workflow model found on disk, no source known
            outcome.status = "failed"
            outcome.error = (
                f"{outcome.folder}/{outcome.filename}: no source known, so it cannot be locked"
            )
    nodes = await lock_nodes(wanted, manifest.python, report)
    if not nodes.complete or not all(o.status in {"locked", "duplicate"} for o in report.outcomes):
        return LockResult(None, report)
    inputs = inputs_of(manifest, workflow_sha256)
    return LockResult(Lockfile(inputs, tuple(models), nodes.packs, nodes.python), report)


def _one_per_target(pinned: list[tuple[LockedModel, ModelOutcome]]) -> list[LockedModel]:
    """One model per folder/filename: the same bytes twice are one entry, different bytes for
    one destination fail the later entry (as a start would)."""
    chosen: dict[str, LockedModel] = {}
    for model, outcome in pinned:
        first = chosen.get(model.relative)
        if first is None:
            chosen[model.relative] = model
        elif first.sha256 == model.sha256:
            outcome.status, outcome.error = "duplicate", f"same file as {first.name}"
        else:
            outcome.record_error(
                PlaceError(
                    f"{model.name} and {first.name} both want {model.relative}",
                    hint="give one of them another folder with ':folder'",
                )
            )
    return list(chosen.values())


async def workflow_hashes(
    client: HttpClient, settings: Settings, manifest: PodManifest
) -> dict[str, str]:
    """sha256 of each readable workflow's text, so `--check` sees a workflow edited in place."""
    hashes: dict[str, str] = {}
    for entry, source in zip(manifest.workflows, manifest.workflow_sources(), strict=True):
        try:
            document = await load_workflow(client, source, settings)
        except IgnitionError:
            continue  # resolve_requested reports it as a failed entry; --check as changed
        hashes[entry] = hashlib.sha256(document).hexdigest()
    return hashes


async def _pin(
    client: HttpClient, settings: Settings, file: ResolvedFile, outcome: ModelOutcome
) -> LockedModel:
    size, sha256 = file.expected_size, file.expected_sha256
    if sha256 is None:
        size, sha256 = await _fetch_and_hash(client, settings, file)
        outcome.warnings.append("no hash published: fetched once and hashed")
    elif size is None:
        size = await _exact_size(client, file)
    url = await _at_commit(client, file) if file.source == "huggingface" else file.url
    outcome.size, outcome.sha256, outcome.url = size, sha256, redact_url(url)
    return LockedModel(
        name=file.name,
        source=file.source,
        url=redact_url(url),
        folder=file.folder,
        filename=file.filename,
        size=size,
        sha256=sha256,
    )


async def _at_commit(client: HttpClient, file: ResolvedFile) -> str:
    """The Hugging Face URL at the commit its branch or tag points to now (X-Repo-Commit), so
    the lock still finds these bytes after the branch moves on."""
    assert isinstance(file.ref, HuggingFaceRef)
    async with client.get(file.url, method="HEAD", stop_at_other_host=True) as response:
        commit = response.headers.get("X-Repo-Commit", "").lower()
    revision = f"/resolve/{quote(file.ref.revision, safe='')}/"
    if not _COMMIT.match(commit) or revision not in file.url:
        return file.url
    return file.url.replace(revision, f"/resolve/{commit}/", 1)


async def _exact_size(client: HttpClient, file: ResolvedFile) -> int:
    """The file's exact size from a one-byte ranged GET (presigned storage URLs allow GET only)."""
    async with client.get(file.url, headers={"Range": "bytes=0-0"}) as response:
        if response.status >= 400:
            raise HttpError(response.status, str(response.url), dict(response.headers), "")
        match = _CONTENT_RANGE_TOTAL.search(response.headers.get("Content-Range", ""))
        if response.status == 206 and match:
            return int(match.group(1))
        if response.status == 200 and response.content_length is not None:
            return response.content_length
    raise FetchError(
        f"{file.name}: the source states no exact size for {file.filename}",
        hint="run again; report it if it persists",
    )


async def _fetch_and_hash(
    client: HttpClient, settings: Settings, file: ResolvedFile
) -> tuple[int, str]:
    """Fetch the file once through the engine into a scratch folder, keep only its hash."""
    identity = f"url:{redact_url(file.url)}:{file.expected_size}"
    settings.tmp_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="ignition-lock-", dir=settings.tmp_dir) as scratch:
        request = FetchRequest(
            url=file.url,
            staging_path=Path(scratch) / "file",
            expected_size=file.expected_size,
            expected_sha256=None,
            identity=identity,
            label=f"{file.folder}/{file.filename}",
        )
        fetched = await fetch_file(client, request, NoProgress())
        await asyncio.to_thread(check_fetched, fetched, request, file.filename)
        with contextlib.suppress(OSError):
            fetched.path.unlink()
    return fetched.size_bytes, fetched.sha256
