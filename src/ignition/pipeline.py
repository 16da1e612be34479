"""spec → resolve → fetch → place, for every requested model at once.

The one module that imports every stage. Each model's failure is recorded on its own outcome
and never stops the others; the report says, per file, what happened and why.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import shutil
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Literal

from pydantic import SecretStr

from ignition._http import (
    NETWORK_ERRORS,
    HttpClient,
    HttpError,
    RetryPolicy,
    ServiceToken,
    acting_for,
    describe_network_error,
    mask_secrets,
    redact_url,
)
from ignition.errors import (
    DiskFullError,
    DuplicateEntryError,
    FetchError,
    IgnitionError,
    MissingSourceError,
    ModelNotFoundError,
    PlaceError,
    ResolveError,
    SpecError,
)
from ignition.fetch import fetch_file
from ignition.fetch.progress import TransferProgress
from ignition.fetch.verify import check_fetched
from ignition.pin.locked import check_pinned, locked_files, upstream_sha256
from ignition.pin.lockfile import LOCK_NAME
from ignition.pin.request import gather_request
from ignition.place.install import destination, install, prepare_state_dir, staging_path
from ignition.place.lock import FileLock
from ignition.place.manifest import Manifest
from ignition.place.present import file_lock, trusted_in_place, verified_in_place
from ignition.place.store import models_root
from ignition.progress import RunDisplay
from ignition.records import CivitaiRef, FetchRequest, ModelRef, ResolvedFile, SourceName
from ignition.report import ModelOutcome, ProvisionReport, Status
from ignition.resolve import explain_http_error, resolve
from ignition.resolve.workflow_source import load_workflow
from ignition.settings import Settings
from ignition.spec import parse_specs
from ignition.spec.workflow import read_workflow, split_sources, workflow_needs

# Left free after the plan, so a full disk never takes the pod's logs and databases with it.
DISK_RESERVE_BYTES = 256 * 1024 * 1024
_RESOLVES_AT_ONCE = 8
_FILES_AT_ONCE = 4


def free_bytes_at(path: Path) -> int:
    """Free bytes on the filesystem that holds (or will hold) `path`."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    return shutil.disk_usage(probe).free


@dataclass
class _Planned:
    file: ResolvedFile
    outcome: ModelOutcome
    target: Path
    relative: str  # the target under the models root: the manifest's and the lock's key


async def provision(
    settings: Settings,
    *,
    dry_run: bool = False,
    display: RunDisplay | None = None,
    retry: RetryPolicy | None = None,
    free_bytes: Callable[[Path], int] = free_bytes_at,
) -> ProvisionReport:
    """Provision the models `settings` asks for into the models root: PERSISTENT_STORAGE when
    set, else `settings.models_dir`.

    1. Parse both lists and every workflow (COMFYUI_WORKFLOWS); each bad entry becomes a
       failed outcome, the rest go on.
    2. Resolve every entry (several at once); a failure fails that entry only.
    3. Plan each file's destination; files the root's manifest still trusts (same size and
       mtime as when verified: one stat, no read) are skipped.
    4. Disk preflight: the bytes still to fetch must fit, or every fetch fails before starting.
    5. For each remaining file (several at once), under its lock shared by every process using
       the root: a file another process placed meanwhile, or one that hashes right, is kept;
       otherwise fetch, verify, install and record it. With `dry_run`, stop after 4.
    """
    report = ProvisionReport()
    if display is None:
        display = RunDisplay(settings.status_file, stream=sys.stderr, tty=False)
    display.attach(report)
    models_dir = models_root(settings)
    if settings.persistent_store is not None:
        display.say(f"models go to the persistent store {models_dir} (PERSISTENT_STORAGE)")
    # Every retry of the run is shown as it happens (a run with no network says so at once).
    policy = dataclasses.replace(retry or RetryPolicy(), on_retry=display.retrying)
    with display:
        async with open_client(settings, policy) as client:
            display.set_phase("resolving")
            resolved = await resolve_requested(client, settings, report, display)
            try:
                await asyncio.to_thread(prepare_state_dir, models_dir, create=not dry_run)
            except (PlaceError, OSError) as error:
                _fail_all(resolved, error, models_dir)
                return report
            manifest = await asyncio.to_thread(Manifest, models_dir)
            planned = await asyncio.to_thread(_plan, resolved, manifest, report)
            for outcome in report.outcomes:
                if outcome.status == "skipped":
                    display.finished(outcome)
            _check_writable(planned, models_dir)
            _check_disk(planned, models_dir, free_bytes, report)
            if dry_run:
                for item in planned:
                    if item.outcome.status == "pending":
                        item.outcome.status = "planned"
                return report
            display.set_phase("fetching")
            await _fetch_all(client, settings, planned, manifest, display)
    return report


def open_client(settings: Settings, retry: RetryPolicy | None = None) -> HttpClient:
    """The run's one HTTP client, each token scoped to its own service."""
    # Keyed by service, not endpoint: a mirror serving both on one origin keeps both tokens.
    tokens = [
        ServiceToken("civitai", settings.civitai_endpoint, _secret(settings.civitai_token)),
        ServiceToken("huggingface", settings.hf_endpoint, _secret(settings.hf_token)),
    ]
    return HttpClient.from_settings(settings, tokens, retry=retry)


async def resolve_requested(
    client: HttpClient,
    settings: Settings,
    report: ProvisionReport,
    display: RunDisplay | None = None,
) -> list[tuple[ResolvedFile, ModelOutcome]]:
    """Steps 1-2 of `provision`: what the env lists and IGNITION_MANIFEST ask for, resolved;
    with the manifest's lock, its files are taken from the lock as they are (pin/request.py)."""
    request = await gather_request(client, settings)
    if request.problem is not None:
        name = settings.ignition_manifest or settings.ignition_lock
        outcome = ModelOutcome(name=redact_url(name) if "://" in name else name, source="manifest")
        _record_error(outcome, request.problem)
        report.outcomes.append(outcome)
    for note in request.notes:
        if display is not None:
            display.say(note)
    wanted = request.settings
    parsed = parse_specs(wanted.civitai_models, wanted.huggingface_models)
    for error in parsed.errors:
        status: Status = "duplicate" if isinstance(error, DuplicateEntryError) else "failed"
        outcome = ModelOutcome(name=error.entry, source=error.source, status=status)
        _record_error(outcome, error, status)
        report.outcomes.append(outcome)
    refs = [ref for ref in parsed.refs if ref.key not in request.pinned_keys]
    if display is not None:
        _say_what_is_resolved(display, len(refs), wanted.comfyui_workflows)
    links: dict[ModelRef, str] = {}  # workflow refs → the URL the workflow gave
    refs += await _workflow_refs(client, wanted, report, links)
    pinned: list[tuple[ResolvedFile, ModelOutcome]] = []
    if request.lock is not None:
        files, unusable = locked_files(request.lock, request.lock_origin)
        for model, problem in unusable:
            outcome = ModelOutcome(name=model.name, source="lock", folder=model.folder)
            _record_error(outcome, problem)
            report.outcomes.append(outcome)
        for file in files:
            outcome = _outcome_for(file)
            report.outcomes.append(outcome)
            pinned.append((file, outcome))
    live = await _resolve_all(client, wanted, refs, report, links)
    if request.lock is not None:
        for _, outcome in live:
            outcome.warnings.append(f"not in {LOCK_NAME}: resolved now, not pinned")
    return pinned + live


def _say_what_is_resolved(display: RunDisplay, entries: int, workflows: str) -> None:
    """The run's first line: before any answer arrives, a log shows what is being asked for."""
    parts = [f"{entries} model entr{'y' if entries == 1 else 'ies'}"] if entries else []
    if count := len(split_sources(workflows)):
        parts.append(f"{count} workflow{'' if count == 1 else 's'}")
    if parts:
        display.say(f"resolving {' and '.join(parts)}")


async def _workflow_refs(
    client: HttpClient, settings: Settings, report: ProvisionReport, links: dict[ModelRef, str]
) -> list[ModelRef]:
    """Every model the workflows need, as refs; what can't be fetched becomes an outcome.
    `links` gets each ref's URL as the workflow wrote it, for the report if it fails.

    A model with no known source that is already in its folder (the user uploaded it) counts
    as in place, unverified; otherwise it is "missing" and the run fails, because the workflow
    would fail in ComfyUI.
    """
    refs: list[ModelRef] = []
    seen: set[tuple[str, str]] = set()
    for source in split_sources(settings.comfyui_workflows):
        try:
            models = read_workflow(await load_workflow(client, source, settings), origin=source)
        except Exception as error:  # one workflow's failure, never the run's
            outcome = ModelOutcome(name=source, source="workflow")
            _record_error(outcome, _as_ignition_error(error, f"workflow {source}", SpecError))
            report.outcomes.append(outcome)
            continue
        for need in workflow_needs(models, origin=source):
            key = (need.model.directory, need.model.name)
            if key in seen:
                continue
            seen.add(key)
            if need.ref is not None:
                refs.append(need.ref)
                if need.model.url is not None:
                    links[need.ref] = need.model.url
                continue
            outcome = ModelOutcome(
                name=need.model.name,
                source="workflow",
                folder=need.model.directory,
                filename=need.model.name,
            )
            report.outcomes.append(outcome)
            assert need.problem is not None
            present = (
                _uploaded(settings, need.model.directory, need.model.name)
                if isinstance(need.problem, MissingSourceError)
                else None
            )
            if present is not None:
                outcome.status = "skipped"
                outcome.path = str(present)
                outcome.warnings.append("already in its folder; no source known, not verified")
                continue
            missing = isinstance(need.problem, MissingSourceError)
            _record_error(outcome, need.problem, "missing" if missing else "failed")
    return refs


def _unreachable_hint(ref: ModelRef, settings: Settings) -> str:
    """Check the network; and the endpoint variable of this entry's source, if it was set."""
    field, name = (
        ("civitai_endpoint", "CIVITAI_ENDPOINT")
        if isinstance(ref, CivitaiRef)
        else ("hf_endpoint", "HF_ENDPOINT")
    )
    endpoint = getattr(settings, field)
    if endpoint == Settings.model_fields[field].default:
        return "check the network connection, then run again"
    return f"check the network connection and {name} ({endpoint}), then run again"


def _uploaded(settings: Settings, folder: str, name: str) -> Path | None:
    """The file a user uploaded for a workflow: in the pod's models folder or the store (both
    seen by ComfyUI), and only if it really lies inside that root."""
    for root in sorted({settings.models_dir, models_root(settings)}):
        path = root / folder / name
        if path.is_file() and path.resolve().is_relative_to(root.resolve()):
            return path
    return None


def _secret(value: SecretStr | None) -> str | None:
    return value.get_secret_value() if value is not None else None


async def _resolve_all(
    client: HttpClient,
    settings: Settings,
    refs: list[ModelRef],
    report: ProvisionReport,
    links: dict[ModelRef, str],
) -> list[tuple[ResolvedFile, ModelOutcome]]:
    gate = asyncio.Semaphore(_RESOLVES_AT_ONCE)

    async def one(ref: ModelRef) -> list[ResolvedFile] | IgnitionError:
        async with gate:
            try:
                with acting_for(_source_of(ref)):
                    return await resolve(client, settings, ref)
            except IgnitionError as error:
                return error
            except HttpError as error:
                return explain_http_error(error, ref, settings)
            except NETWORK_ERRORS as error:
                return ResolveError(
                    f"{ref.text!r}: cannot reach the source ({describe_network_error(error)})",
                    hint=_unreachable_hint(ref, settings),
                )
            except Exception as error:  # this entry's failure, never the run's
                return _as_ignition_error(error, repr(ref.text), ResolveError)

    answers = await asyncio.gather(*(one(ref) for ref in refs))
    resolved: list[tuple[ResolvedFile, ModelOutcome]] = []
    for ref, answer in zip(refs, answers, strict=True):
        source = _source_of(ref)
        if isinstance(answer, IgnitionError):
            # Where it was going stays in the report: a workflow's entry keeps its folder,
            # file name and link, and its hint speaks of the workflow, not of list syntax.
            outcome = ModelOutcome(
                name=ref.text, source=source, folder=ref.folder, filename=ref.filename
            )
            link = links.get(ref)
            if link is not None:
                outcome.url = redact_url(link)
                if isinstance(answer, ModelNotFoundError):
                    answer.hint = (
                        "the workflow's link for this model leads nowhere: fix the URL in the "
                        f"workflow, or list the model in CIVITAI_MODELS/HUGGINGFACE_MODELS "
                        f"with ':{ref.folder}'"
                    )
            _record_error(outcome, answer)
            report.outcomes.append(outcome)
            continue
        for file in answer:
            outcome = _outcome_for(file)
            report.outcomes.append(outcome)
            resolved.append((file, outcome))
    return resolved


def _outcome_for(file: ResolvedFile) -> ModelOutcome:
    return ModelOutcome(
        name=file.name,
        source=file.source,
        folder=file.folder,
        filename=file.filename,
        url=redact_url(file.url),
        size=file.expected_size or file.size_estimate,
        sha256=file.expected_sha256,
        warnings=list(file.warnings),
    )


def _source_of(ref: ModelRef) -> SourceName:
    """The service a ref is fetched from: its outcome's `source` and whose token it carries."""
    return "civitai" if isinstance(ref, CivitaiRef) else "huggingface"


def _plan(
    resolved: Iterable[tuple[ResolvedFile, ModelOutcome]],
    manifest: Manifest,
    report: ProvisionReport,
) -> list[_Planned]:
    models_dir = manifest.root
    planned: list[_Planned] = []
    claimed: dict[Path, ResolvedFile] = {}
    for file, outcome in resolved:
        try:
            target = destination(models_dir, file.folder, file.filename)
        except PlaceError as error:
            _record_error(outcome, error)
            continue
        outcome.path = str(target)
        first = claimed.get(target)
        if first is not None:
            if first.expected_sha256 == file.expected_sha256 and first.url == file.url:
                outcome.status = "duplicate"
                outcome.error = f"same file as {first.name}; fetched once"
            else:
                _record_error(
                    outcome,
                    PlaceError(
                        f"{file.name} and {first.name} both want {file.folder}/{file.filename}",
                        hint="give one of them another folder with ':folder'",
                    ),
                )
            continue
        claimed[target] = file
        relative = target.relative_to(models_dir).as_posix()
        if trusted_in_place(manifest, relative, file.expected_size, file.expected_sha256):
            outcome.status = "skipped"
            outcome.size = target.stat().st_size
            continue
        planned.append(_Planned(file, outcome, target, relative))
    return planned


def _fail_all(
    resolved: list[tuple[ResolvedFile, ModelOutcome]], error: Exception, models_dir: Path
) -> None:
    """No usable state folder: no file can be staged, locked or recorded."""
    failure = (
        error
        if isinstance(error, PlaceError)
        else PlaceError(
            f"cannot prepare {models_dir}: {error}",
            hint="the models folder (or PERSISTENT_STORAGE) must be writable",
        )
    )
    for _file, outcome in resolved:
        _record_error(outcome, failure)


def _check_disk(
    planned: list[_Planned],
    models_dir: Path,
    free_bytes: Callable[[Path], int],
    report: ProvisionReport,
) -> None:
    # A file already there with the promised size is most likely kept after its hash check
    # (a hand-copied store, a lost manifest): counting it would refuse a start that needs no disk.
    report.needed_bytes = sum(
        item.file.planned_size for item in planned if not _sized_right(item.target, item.file)
    )
    report.free_bytes = free_bytes(models_dir)
    shortfall = report.needed_bytes + DISK_RESERVE_BYTES - report.free_bytes
    if not planned or shortfall <= 0:
        return
    error = DiskFullError(
        f"not enough disk space in {models_dir}: the plan needs {_gb(report.needed_bytes)} "
        f"(+{_gb(DISK_RESERVE_BYTES)} kept free), {_gb(report.free_bytes)} is free; "
        f"short by {_gb(shortfall)}",
    )
    for item in planned:
        _record_error(item.outcome, error)
    planned.clear()


def _check_writable(planned: list[_Planned], models_dir: Path) -> None:
    """A folder the run cannot write to fails every pending file now, so that a dry run says
    so too (instead of "planned") and a real run fails before resolving turns into waiting."""
    probe = models_dir
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    if not planned or os.access(probe, os.W_OK | os.X_OK):
        return
    error = PlaceError(
        f"cannot write to {models_dir} ({probe} is not writable)",
        hint="the models folder (or PERSISTENT_STORAGE) must be writable: fix its "
        "permissions or choose another folder",
    )
    for item in planned:
        _record_error(item.outcome, error)
    planned.clear()


def _sized_right(target: Path, file: ResolvedFile) -> bool:
    try:
        size = target.stat().st_size
    except OSError:
        return False
    return size == file.expected_size or (file.expected_size is None and target.is_file())


def _gb(size: int) -> str:
    return f"{size / 1e9:.2f} GB"


async def _fetch_all(
    client: HttpClient,
    settings: Settings,
    planned: list[_Planned],
    manifest: Manifest,
    display: RunDisplay,
) -> None:
    gate = asyncio.Semaphore(_FILES_AT_ONCE)

    async def one(item: _Planned) -> None:
        lock = file_lock(manifest.root, item.relative, stale_after_s=settings.lock_stale_s)

        def waiting() -> None:
            # Another pod may fetch a 20 GB file for minutes: say why this one is quiet.
            holder = (lock.holder() or "another process").rsplit(":", 1)[0]
            display.say(f"waiting  {item.relative}: {holder} is fetching it into {manifest.root}")

        try:
            claim = await _claim(lock, gate, waiting)
        except OSError as error:
            _record_error(
                item.outcome,
                PlaceError(
                    f"cannot lock {item.relative} in {manifest.root}: {error}",
                    hint="the models folder (or PERSISTENT_STORAGE) must be writable",
                ),
            )
            display.finished(item.outcome)
            return
        except Exception as error:  # a hostile lock file: this file's failure only
            _record_error(item.outcome, _as_ignition_error(error, item.relative, PlaceError))
            display.finished(item.outcome)
            return
        async with claim:
            item.outcome.status = "fetching"
            progress = display.transfer(item.outcome)
            try:
                with acting_for(item.file.source):
                    item.outcome.status = await _fetch_and_place(
                        client, settings, item, manifest, progress
                    )
            except IgnitionError as error:
                _record_error(item.outcome, error)
            except HttpError as error:
                _record_error(item.outcome, explain_http_error(error, item.file.ref, settings))
            except NETWORK_ERRORS as error:
                message = f"{item.file.name}: {describe_network_error(error)}"
                _record_error(item.outcome, FetchError(message, hint="run again"))
            except OSError as error:
                _record_error(item.outcome, PlaceError(f"{item.file.filename}: {error}"))
            except Exception as error:  # this file's failure, never the run's
                _record_error(item.outcome, _as_ignition_error(error, item.relative, FetchError))
            finally:
                progress.close()
            display.finished(item.outcome)

    await asyncio.gather(*(one(item) for item in planned))


async def _claim(
    lock: FileLock, gate: asyncio.Semaphore, waiting: Callable[[], None] | None
) -> contextlib.AsyncExitStack:
    """Hold a fetch slot and the file's lock together; the returned stack releases both.
    `waiting` is called once if the lock is held elsewhere.

    A lock held by another process is waited for OUTSIDE the slot, so while another pod fetches
    this file, this one fetches others instead of idling; and a lock is only taken with a slot
    in hand, so no process sits on locks of files it is not fetching yet.
    """
    while True:
        await gate.acquire()
        try:
            taken = await asyncio.to_thread(lock.try_acquire)
        except BaseException:
            gate.release()
            raise
        if taken:
            break
        gate.release()
        if waiting is not None:
            await asyncio.to_thread(waiting)
            waiting = None
        await asyncio.sleep(lock.poll_s)
    stack = contextlib.AsyncExitStack()
    stack.callback(gate.release)
    stack.push_async_callback(asyncio.to_thread, lock.release)
    return stack


async def _fetch_and_place(
    client: HttpClient,
    settings: Settings,
    item: _Planned,
    manifest: Manifest,
    progress: TransferProgress,
) -> Literal["skipped", "ok"]:
    """With the file's lock held (see `_claim`): in place already? → fetch into staging → check
    size, sha256, header → move into place → record. Returns the outcome's status ("skipped" or
    "ok").

    The lock makes one process fetch while the others wait, then find the file recorded. The
    engine resumes a partial of the same source, checks sha256 as the bytes arrive and fetches
    a corrupt file once more before it gives up."""
    file = item.file
    identity = (
        f"sha256:{file.expected_sha256}"
        if file.expected_sha256
        else f"url:{redact_url(file.url)}:{file.expected_size}"
    )
    request = FetchRequest(
        url=file.url,
        staging_path=staging_path(manifest.root, identity, item.relative),
        expected_size=file.expected_size,
        expected_sha256=file.expected_sha256,
        identity=identity,
        label=f"{file.folder}/{file.filename}",
    )
    await asyncio.to_thread(manifest.reload)
    if await asyncio.to_thread(
        verified_in_place,
        manifest,
        item.relative,
        identity=identity,
        expected_size=file.expected_size,
        expected_sha256=file.expected_sha256,
        source=redact_url(file.url),
    ):
        item.outcome.size = item.target.stat().st_size
        return "skipped"
    if file.pinned:
        # The source's own word first: changed bytes fail here, before anything is fetched.
        published = await upstream_sha256(client, settings, file)
        if published is None:  # no hash stated: fetch, then compare with the lock
            request = replace(request, expected_size=None, expected_sha256=None)
    fetched = await fetch_file(client, request, progress)
    try:
        await asyncio.to_thread(check_fetched, fetched, request, file.filename)
        if file.pinned:
            check_pinned(fetched, file)
    except FetchError:
        with contextlib.suppress(OSError):
            fetched.path.unlink()  # known-bad bytes: never resumed, never installed
        raise
    await asyncio.to_thread(install, fetched, item.target)
    await asyncio.to_thread(
        manifest.record,
        item.relative,
        identity=identity,
        sha256=fetched.sha256,
        source=redact_url(file.url),
    )
    item.outcome.size = fetched.size_bytes
    item.outcome.sha256 = fetched.sha256
    return "ok"


def _as_ignition_error(error: Exception, what: str, kind: type[IgnitionError]) -> IgnitionError:
    """Any failure of one entry as the error it is recorded with: IgnitionErrors as they are,
    anything else (a hostile input nobody foresaw, a bug) named by its type, secrets masked."""
    if isinstance(error, IgnitionError):
        return error
    return kind(
        f"{what}: unexpected {type(error).__name__}: {mask_secrets(str(error))[:500]}",
        hint="the other entries went on; run again, and report this if it repeats",
    )


def _record_error(outcome: ModelOutcome, error: IgnitionError, status: Status = "failed") -> None:
    outcome.record_error(error, status)
