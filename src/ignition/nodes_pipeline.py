"""spec → resolve → fetch → place, for every custom node pack at once.

The node packs' counterpart of `pipeline.py`. Each pack's failure is recorded on its own
outcome and never stops the others. The warm path comes first and needs neither the network nor
pip: a pack whose on-disk record says it was installed for exactly this request, with the same
requirements into the same interpreter, is "skipped" after one small file read.

What is asked for: COMFYUI_NODES and IGNITION_MANIFEST's `nodes` (an entry in both is one
entry), the packs their workflows name, and the manifest's `python` entries, installed in the
packs' one requirements pass. With the manifest's lock (pin/request.py) its packs are taken at
the locked version (registry archive checked against the locked sha256) or commit, and its
Python packages installed exactly (`--require-hashes --no-deps`) in place of those packs'
requirements; only env entries the lock does not name are resolved.
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from ignition._http import (
    NETWORK_ERRORS,
    HttpClient,
    HttpError,
    RetryPolicy,
    describe_network_error,
    redact_url,
)
from ignition.errors import (
    DuplicateEntryError,
    FetchError,
    IgnitionError,
    MissingSourceError,
    PlaceError,
    RequirementsError,
    ResolveError,
    SpecError,
)
from ignition.fetch.pack import fetch_archive, fetch_commit
from ignition.pin.lockfile import LockedPack, LockedPython
from ignition.pin.request import gather_request
from ignition.place.lock import FileLock
from ignition.place.packs import (
    LOCK_NAME,
    STAGING_NAME,
    PackRecord,
    custom_nodes_dir,
    exclude_record_from_git,
    read_record,
    remove_tree,
    staging_dir,
    swap_into_place,
    unpack_archive,
    write_record,
    write_tracking,
)
from ignition.place.requirements import (
    PackRequirements,
    install_requirements,
    pinned_versions,
    python_marker_current,
    record_baseline,
    requirements_fingerprint,
    run_install_script,
    write_python_marker,
)
from ignition.progress import RunDisplay
from ignition.records import NodeRef, ResolvedPack
from ignition.report import PackOutcome, ProvisionReport
from ignition.resolve.git import resolve_git
from ignition.resolve.registry import pack_for_class, resolve_registry
from ignition.resolve.workflow_source import load_workflow
from ignition.settings import Settings
from ignition.spec.nodes import parse_node_entry, parse_node_specs, repo_name
from ignition.spec.workflow import split_sources
from ignition.spec.workflow_packs import CORE_PACK, read_workflow_packs

_RESOLVES_AT_ONCE = 8
_PACKS_AT_ONCE = 4
_LOCKED_PYTHON = "python packages of the lock"


@dataclass
class _Pack:
    """One pack on its way through the stages."""

    ref: NodeRef
    outcome: PackOutcome
    classes: tuple[str, ...] = ()  # node classes the registry mapped to it
    resolved: ResolvedPack | None = None
    staged: Path | None = None
    locked: LockedPack | None = None  # taken from the lock: its requirements are in the lock


@dataclass
class _Python:
    """The Python packages asked for beside the packs' requirements."""

    entries: tuple[str, ...] = ()  # the manifest's `python` entries (unlocked)
    locked: LockedPython | None = None  # the lock's exact set (a locked start)
    outcomes: dict[str, PackOutcome] | None = None

    def requested(self) -> list[str]:
        if self.locked is not None:
            return [package.requirement() for package in self.locked.packages]
        return sorted(self.entries)

    def __bool__(self) -> bool:
        return bool(self.entries) or bool(self.locked and self.locked.packages)


async def provision_nodes(
    settings: Settings,
    *,
    dry_run: bool = False,
    display: RunDisplay | None = None,
    retry: RetryPolicy | None = None,
) -> ProvisionReport:
    """Provision the packs COMFYUI_NODES and every workflow name into custom_nodes/.

    1. Parse the list and read every workflow's pack metadata (classes without any are kept).
    2. Warm check: packs (and classes) an Ignition record already satisfies are skipped.
    3. Map the remaining classes to packs through the registry (marked as guesses), resolve
       every pack to a version or commit. With `dry_run`, stop here.
    4. Fetch and build each pack in staging; install all requirements in one pass; move each
       pack whose requirements installed into place, run its install.py, record it.
    """
    report = ProvisionReport()
    if display is None:
        display = RunDisplay(None, stream=sys.stderr, tty=False)
    display.attach(report)
    custom_nodes = custom_nodes_dir(settings.comfyui_base)
    # No tokens: the registry and its storage need none, and git packs go through git.
    async with HttpClient.from_settings(settings, retry=retry) as client:
        # A manifest or lock that cannot be read is reported once, by the models' pipeline.
        request = await gather_request(client, settings)
        settings = request.settings
        lock = request.lock
        locked = lock.packs if lock is not None else ()
        python = _Python(request.python, lock.python if lock is not None else None)
        packs, classes = await _wanted(client, settings, report, locked)
        _python_outcomes(python, report)
        if not packs and not classes and not python:
            return report
        if not dry_run:
            await record_baseline(settings)
        async with contextlib.AsyncExitStack() as stack:
            if not dry_run:
                await stack.enter_async_context(_nodes_lock(settings, custom_nodes, display))
            await _provision_locked(
                client,
                settings,
                custom_nodes,
                (packs, classes, python),
                report,
                display,
                dry_run=dry_run,
            )
    for outcome in report.packs:
        _say(display, outcome)
    return report


async def resolve_packs(
    client: HttpClient, settings: Settings, report: ProvisionReport
) -> list[tuple[ResolvedPack, PackOutcome]]:
    """Every pack COMFYUI_NODES and the workflows name (and the classes map to), resolved to
    a version or commit, whatever is installed: what `ignition lock` pins. Failures are on
    their outcomes in `report.packs`."""
    packs, classes = await _wanted(client, settings, report)
    packs += await _guess_packs(client, settings, classes, packs, report)
    await _resolve_all(client, settings, packs)
    return [(pack.resolved, pack.outcome) for pack in packs if pack.resolved is not None]


def _nodes_lock(settings: Settings, custom_nodes: Path, display: RunDisplay) -> FileLock:
    """One provisioning of custom_nodes at a time (two processes sharing a workspace): the
    second waits, then finds the first one's packs recorded."""
    custom_nodes.mkdir(parents=True, exist_ok=True)
    lock = FileLock(custom_nodes / LOCK_NAME, stale_after_s=settings.lock_stale_s)
    if lock.holder() is not None:
        display.say(f"nodes: waiting for {lock.holder()} to finish installing node packs")
    return lock


async def _provision_locked(
    client: HttpClient,
    settings: Settings,
    custom_nodes: Path,
    wanted: tuple[list[_Pack], list[str], _Python],
    report: ProvisionReport,
    display: RunDisplay,
    *,
    dry_run: bool,
) -> None:
    """Steps 2-4 of `provision_nodes`, under the custom_nodes lock (unless a dry run)."""
    packs, classes, python = wanted
    pending = _warm_check(settings, custom_nodes, packs, classes, report)
    if pending or classes:
        display.say(f"nodes: resolving {len(pending) + len(classes)} pack(s) and class(es)")
        pending += await _guess_packs(client, settings, classes, packs, report)
        await _resolve_all(client, settings, pending)
        pending = _plan(custom_nodes, pending, settings)
    if python and python_marker_current(settings, python.requested()):
        _python_status(python, "skipped")
        python = _Python()
    if dry_run:
        for pack in pending:
            pack.outcome.status = "planned"
        _python_status(python, "planned")
        return
    if pending or python:
        try:
            await _install_all(client, settings, custom_nodes, pending, python, display)
        finally:  # empty now; Manager would list a leftover `*.disabled` folder as a pack
            with contextlib.suppress(OSError):
                (custom_nodes / STAGING_NAME).rmdir()


# --- 1. what is wanted ---------------------------------------------------------------------------


async def _wanted(
    client: HttpClient,
    settings: Settings,
    report: ProvisionReport,
    locked: Sequence[LockedPack] = (),
) -> tuple[list[_Pack], list[str]]:
    parsed = parse_node_specs(settings.comfyui_nodes, github_endpoint=settings.github_endpoint)
    for error in parsed.errors:
        status = "duplicate" if isinstance(error, DuplicateEntryError) else "failed"
        report.packs.append(_failed(PackOutcome(name=error.entry, source="nodes"), error, status))
    packs: dict[tuple[str, str], _Pack] = {}
    for entry in locked:
        try:
            ref = locked_ref(entry, github_endpoint=settings.github_endpoint)
        except SpecError as error:  # a hand-edited (or hostile) lock record: that pack alone
            report.packs.append(_failed(PackOutcome(name=entry.name, source="lock"), error))
            continue
        packs[ref.key] = _Pack(ref, _outcome_for(ref, report), locked=entry)
    for ref in parsed.refs:
        if ref.key in packs:  # the lock pins it: the env entry is the same pack
            continue
        packs[ref.key] = _Pack(ref, _outcome_for(ref, report))
    classes: dict[str, None] = {}
    for source in split_sources(settings.comfyui_workflows):
        try:
            text = await load_workflow(client, source, settings)
            found = read_workflow_packs(
                text, origin=source, github_endpoint=settings.github_endpoint
            )
        except SpecError:
            continue  # the models' pipeline reads the same workflow and reports it, once
        for ref in found.refs:
            if ref.key not in packs:  # an entry in COMFYUI_NODES beats a workflow's metadata
                packs[ref.key] = _Pack(ref, _outcome_for(ref, report))
        classes.update(dict.fromkeys(found.classes))
    return list(packs.values()), list(classes)


def locked_ref(entry: LockedPack, *, github_endpoint: str) -> NodeRef:
    """The exact request a lock record stands for: the registry version, or the git commit
    (never the tag or branch it was locked from: one that moved since is not followed).
    Checked by the entry parser, as a COMFYUI_NODES entry would be; SpecError if it fails."""
    pin = entry.commit if entry.source == "git" else entry.version
    if entry.source == "git" and not entry.ref.startswith(("https://", "http://")):
        raise SpecError(f"lock record {entry.name!r}: {entry.ref!r} is not a clone URL")
    ref = parse_node_entry(f"{entry.ref}@{pin}", github_endpoint=github_endpoint, origin="lock")
    if ref.kind != entry.source or ref.version is None:
        raise SpecError(f"lock record {entry.name!r} does not pin one {entry.source} version")
    return replace(ref, text=entry.name)


def _python_outcomes(python: _Python, report: ProvisionReport) -> None:
    if not python:
        return
    names = [_LOCKED_PYTHON] if python.locked is not None else list(python.entries)
    python.outcomes = {name: PackOutcome(name=name, source="python") for name in names}
    report.packs.extend(python.outcomes.values())


def _python_status(python: _Python, status: str) -> None:
    for outcome in (python.outcomes or {}).values():
        outcome.status = status


def _outcome_for(ref: NodeRef, report: ProvisionReport) -> PackOutcome:
    outcome = PackOutcome(name=ref.text, source=ref.kind, guess=ref.guess)
    if ref.kind == "registry":
        outcome.pack_id, outcome.version = ref.name, ref.version
    else:
        outcome.url = redact_url(ref.name)
    report.packs.append(outcome)
    return outcome


def folder_for(ref: NodeRef) -> str:
    """The folder under custom_nodes a ref installs into (Manager's layout), known offline."""
    return ref.name if ref.kind == "registry" else repo_name(ref.name)


# --- 2. warm check -------------------------------------------------------------------------------


def _warm_check(
    settings: Settings,
    custom_nodes: Path,
    packs: list[_Pack],
    classes: list[str],
    report: ProvisionReport,
) -> list[_Pack]:
    """Skip what the records already satisfy; the packs still to resolve. `classes` keeps only
    those no installed record was mapped from."""
    pending: list[_Pack] = []
    for pack in packs:
        folder = folder_for(pack.ref)
        record = read_record(custom_nodes / folder)
        if (
            record is not None
            and record.requested == pack.ref.requested
            and _matches_lock(record, pack.locked)
            and (
                pack.locked is not None
                or _requirements_current(settings, custom_nodes / folder, record)
            )
        ):
            _skip(pack.outcome, custom_nodes / folder, record)
            continue
        pending.append(pack)
    known = _recorded_classes(custom_nodes)
    for class_name in [c for c in classes if c in known]:
        classes.remove(class_name)
        folder, record = known[class_name]
        outcome = PackOutcome(name=class_name, source=record.source, guess=True)
        _skip(outcome, custom_nodes / folder, record)
        if not any(o.path == outcome.path for o in report.packs):
            report.packs.append(outcome)
    return pending


def _matches_lock(record: PackRecord, locked: LockedPack | None) -> bool:
    return locked is None or locked.archive_sha256 in (None, record.archive_sha256)


def _requirements_current(settings: Settings, pack_dir: Path, record: PackRecord) -> bool:
    return record.python == settings.comfyui_python and (
        record.requirements_fingerprint == requirements_fingerprint(pack_dir)
    )


def _recorded_classes(custom_nodes: Path) -> dict[str, tuple[str, PackRecord]]:
    found: dict[str, tuple[str, PackRecord]] = {}
    with contextlib.suppress(OSError):
        for entry in custom_nodes.iterdir():
            record = read_record(entry) if entry.is_dir() else None
            if record is not None:
                found.update((name, (entry.name, record)) for name in record.classes)
    return found


def _skip(outcome: PackOutcome, pack_dir: Path, record: PackRecord) -> None:
    outcome.status = "skipped"
    outcome.folder = pack_dir.name
    outcome.path = str(pack_dir)
    outcome.pack_id = record.pack_id
    outcome.version = record.version
    outcome.commit = record.commit
    outcome.archive_sha256 = record.archive_sha256
    outcome.url = redact_url(record.url)


# --- 3. guess and resolve ------------------------------------------------------------------------


async def _guess_packs(
    client: HttpClient,
    settings: Settings,
    classes: list[str],
    packs: list[_Pack],
    report: ProvisionReport,
) -> list[_Pack]:
    """Map each class to a pack through the registry: new packs (guesses) to resolve."""
    gate = asyncio.Semaphore(_RESOLVES_AT_ONCE)

    async def one(class_name: str) -> str | IgnitionError | None:
        async with gate:
            try:
                return await pack_for_class(client, settings, class_name)
            except HttpError as error:
                return ResolveError(f"{class_name}: the registry answered HTTP {error.status}")
            except NETWORK_ERRORS as error:
                return ResolveError(
                    f"{class_name}: cannot reach the registry ({describe_network_error(error)})",
                    hint="check the network and COMFY_REGISTRY_ENDPOINT; run again",
                )

    answers = await asyncio.gather(*(one(name) for name in classes))
    by_key = {pack.ref.key: pack for pack in packs}
    guessed: dict[tuple[str, str], _Pack] = {}
    for class_name, answer in zip(classes, answers, strict=True):
        if answer == CORE_PACK:
            continue
        if answer is None or isinstance(answer, IgnitionError):
            error = answer or MissingSourceError(
                f"missing, no source known: no registry pack provides node class {class_name!r}",
                hint="add the pack to COMFYUI_NODES (registry id, git URL or owner/repo)",
            )
            status = "failed" if isinstance(answer, IgnitionError) else "missing"
            outcome = PackOutcome(name=class_name, source="workflow", guess=True)
            report.packs.append(_failed(outcome, error, status))
            continue
        key = ("registry", answer.lower())
        existing = by_key.get(key) or guessed.get(key)
        if existing is not None:
            existing.classes += (class_name,)
            continue
        ref = NodeRef(f"{answer} (guessed from {class_name})", "registry", answer, guess=True)
        pack = _Pack(ref, _outcome_for(ref, report), classes=(class_name,))
        pack.outcome.warnings.append(f"guessed from node class {class_name} (no pack metadata)")
        guessed[key] = pack
    return list(guessed.values())


async def _resolve_all(client: HttpClient, settings: Settings, packs: list[_Pack]) -> None:
    gate = asyncio.Semaphore(_RESOLVES_AT_ONCE)

    async def one(pack: _Pack) -> None:
        async with gate:
            pack.outcome.status = "resolving"
            try:
                if pack.ref.kind == "registry":
                    pack.resolved = await resolve_registry(client, settings, pack.ref)
                else:
                    pack.resolved = await resolve_git(settings, pack.ref)
            except IgnitionError as error:
                _failed(pack.outcome, error)
                return
            except NETWORK_ERRORS as error:
                message = (
                    f"{pack.ref.text}: cannot reach the registry ({describe_network_error(error)})"
                )
                _failed(pack.outcome, ResolveError(message, hint="check the network; run again"))
                return
            if pack.locked is not None and pack.locked.archive_sha256 is not None:
                # fetch_archive refuses other bytes: "changed since locked", both hashes.
                pack.resolved = replace(pack.resolved, archive_sha256=pack.locked.archive_sha256)
            _describe(pack.outcome, pack.resolved)
            pack.outcome.status = "pending"

    await asyncio.gather(*(one(pack) for pack in packs))


def _describe(outcome: PackOutcome, resolved: ResolvedPack) -> None:
    outcome.source = resolved.source
    outcome.pack_id = resolved.pack_id
    outcome.folder = resolved.folder
    outcome.version = resolved.version
    outcome.commit = resolved.commit
    outcome.url = redact_url(resolved.url)
    outcome.warnings.extend(resolved.warnings)


def _plan(custom_nodes: Path, packs: Iterable[_Pack], settings: Settings) -> list[_Pack]:
    """The resolved packs still to install: not there at that version, not someone else's."""
    planned: list[_Pack] = []
    claimed: dict[str, str] = {}
    for pack in packs:
        if pack.resolved is None:
            continue
        target = custom_nodes / pack.resolved.folder
        pack.outcome.path = str(target)
        first = claimed.setdefault(target.name, pack.ref.text)
        if first != pack.ref.text:
            message = f"{pack.ref.text} and {first} both install into custom_nodes/{target.name}"
            _failed(pack.outcome, PlaceError(message, hint="name only one of them"))
            continue
        if not target.exists():
            planned.append(pack)
            continue
        record = read_record(target)
        if record is None:
            pack.outcome.status = "skipped"
            pack.outcome.warnings.append(
                f"custom_nodes/{target.name} was not installed by Ignition: left alone"
            )
            continue
        if _same_install(record, pack.resolved) and _requirements_current(settings, target, record):
            # Asked differently (a pin that names the installed version): just note the request.
            merged = tuple(dict.fromkeys((*record.classes, *pack.classes)))
            write_record(target, replace(record, requested=pack.ref.requested, classes=merged))
            pack.outcome.status = "skipped"
            continue
        planned.append(pack)
    return planned


def _same_install(record: PackRecord, resolved: ResolvedPack) -> bool:
    return (record.source, record.version, record.commit) == (
        resolved.source,
        resolved.version,
        resolved.commit,
    ) and resolved.archive_sha256 in (None, record.archive_sha256)


# --- 4. fetch, requirements, place ---------------------------------------------------------------


async def _install_all(
    client: HttpClient,
    settings: Settings,
    custom_nodes: Path,
    packs: list[_Pack],
    python: _Python,
    display: RunDisplay,
) -> None:
    gate = asyncio.Semaphore(_PACKS_AT_ONCE)

    async def stage(pack: _Pack) -> None:
        async with gate:
            pack.outcome.status = "fetching"
            try:
                pack.staged = await _stage(client, settings, custom_nodes, pack)
            except IgnitionError as error:
                _failed(pack.outcome, error)
            except HttpError as error:
                message = f"{pack.ref.text}: the archive download answered HTTP {error.status}"
                _failed(pack.outcome, FetchError(message, hint="run again later"))
            except NETWORK_ERRORS as error:
                message = f"{pack.ref.text}: {describe_network_error(error)}"
                _failed(pack.outcome, FetchError(message, hint="run again"))
            except OSError as error:
                _failed(pack.outcome, PlaceError(f"{pack.ref.text}: {error}"))

    await asyncio.gather(*(stage(pack) for pack in packs))
    staged = [pack for pack in packs if pack.staged is not None]
    if not staged and not python:
        return
    display.say(f"nodes: installing requirements of {len(staged)} pack(s) in one pass")
    for pack in staged:
        pack.outcome.status = "installing"
    _python_status(python, "installing")
    workdir = custom_nodes / STAGING_NAME
    failures = await _requirements(settings, staged, python, workdir)
    for name, outcome in (python.outcomes or {}).items():
        error = failures.get(name)
        if error is not None:
            _failed(outcome, error)
        else:
            outcome.status = "ok"
    if python.outcomes and not any(name in failures for name in python.outcomes):
        write_python_marker(settings, python.requested())
    for pack in staged:
        assert pack.staged is not None and pack.resolved is not None
        error = failures.get(pack.resolved.folder)
        if error is not None:
            remove_tree(pack.staged)
            _failed(pack.outcome, error)
            continue
        await _place(settings, custom_nodes, pack)


async def _stage(client: HttpClient, settings: Settings, custom_nodes: Path, pack: _Pack) -> Path:
    """Build the pack in staging: unpacked (with .tracking) or cloned, record not yet there."""
    resolved = pack.resolved
    assert resolved is not None
    staged = staging_dir(custom_nodes, resolved.folder)
    try:
        if resolved.source == "registry":
            archive = staged.with_name(staged.name + ".archive")
            try:
                sha256 = await fetch_archive(client, resolved, archive)
                names = await asyncio.to_thread(unpack_archive, archive, staged)
            finally:
                archive.unlink(missing_ok=True)
            await asyncio.to_thread(write_tracking, staged, names)
            pack.resolved = replace(resolved, archive_sha256=sha256)
            pack.outcome.archive_sha256 = sha256
        else:
            await fetch_commit(settings, resolved, staged)
            if resolved.cnr_id:  # a registry nightly: Manager's marker of which pack it is
                (staged / ".git" / ".cnr-id").write_text(resolved.cnr_id, "utf-8")
            await asyncio.to_thread(exclude_record_from_git, staged)
    except BaseException:
        remove_tree(staged)
        raise
    return staged


async def _requirements(
    settings: Settings, packs: Sequence[_Pack], python: _Python, workdir: Path
) -> dict[str, RequirementsError]:
    """Failures by pack folder (or python entry): the lock's exact set first (in place of the
    locked packs' requirements), then everything else in one resolution."""
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix="python.", dir=workdir))
    try:
        return await _requirements_in(settings, packs, python, scratch)
    finally:
        remove_tree(scratch)


async def _requirements_in(
    settings: Settings, packs: Sequence[_Pack], python: _Python, workdir: Path
) -> dict[str, RequirementsError]:
    failures: dict[str, RequirementsError] = {}
    locked = [pack for pack in packs if pack.locked is not None]
    if python.locked is not None and python.locked.packages:
        exact = workdir / "locked-python.txt"
        exact.write_text("".join(f"{line}\n" for line in python.requested()), "utf-8")
        item = PackRequirements(_LOCKED_PYTHON, exact)
        await _compare_torch(settings, python)
        failures |= await _install(settings, [item], workdir, ("--require-hashes", "--no-deps"))
        if _LOCKED_PYTHON in failures:  # the locked packs would run without their packages
            for pack in locked:
                assert pack.resolved is not None
                failures[pack.resolved.folder] = failures[_LOCKED_PYTHON]
    wanted = [
        PackRequirements(pack.resolved.folder, pack.staged / "requirements.txt")
        for pack in packs
        if pack.resolved is not None and pack.staged is not None and pack.locked is None
    ]
    for index, entry in enumerate(python.entries if python.locked is None else ()):
        path = workdir / f"python-{index}.txt"
        path.write_text(entry + "\n", "utf-8")
        wanted.append(PackRequirements(entry, path))
    return failures | await _install(settings, wanted, workdir, ())


async def _compare_torch(settings: Settings, python: _Python) -> None:
    """Warn when this interpreter's torch is not the one the lock's packages were resolved
    against (they are installed anyway: they are exact, and torch is never replaced)."""
    assert python.locked is not None
    try:
        installed = await pinned_versions(settings.comfyui_python)
    except RequirementsError:
        return  # the install that follows reports the interpreter
    locked = python.locked.constraints
    if locked and installed != locked:
        say = ", ".join(f"{k}=={v}" for k, v in sorted(locked.items()))
        now = ", ".join(f"{k}=={v}" for k, v in sorted(installed.items()))
        for outcome in (python.outcomes or {}).values():
            outcome.warnings.append(f"locked against {say}; this interpreter has {now}")


async def _install(
    settings: Settings, wanted: list[PackRequirements], workdir: Path, options: tuple[str, ...]
) -> dict[str, RequirementsError]:
    try:
        return await install_requirements(settings, wanted, workdir, options=options)
    except (RequirementsError, OSError) as error:
        failure = error if isinstance(error, RequirementsError) else RequirementsError(str(error))
        return {item.pack: failure for item in wanted if item.requirements.is_file()}


async def _place(settings: Settings, custom_nodes: Path, pack: _Pack) -> None:
    """Record, swap into place, run install.py; on its failure the old folder comes back."""
    resolved, staged = pack.resolved, pack.staged
    assert resolved is not None and staged is not None
    target = custom_nodes / resolved.folder
    record = PackRecord(
        requested=pack.ref.requested,
        source=resolved.source,
        pack_id=resolved.pack_id,
        version=resolved.version,
        commit=resolved.commit,
        url=redact_url(resolved.url),
        archive_sha256=resolved.archive_sha256,
        requirements_fingerprint=requirements_fingerprint(staged),
        python=settings.comfyui_python,
        classes=pack.classes,
    )
    try:
        write_record(staged, record)
        old = await asyncio.to_thread(swap_into_place, staged, target)
    except OSError as error:
        remove_tree(staged)
        _failed(pack.outcome, PlaceError(f"{pack.ref.text}: cannot move into {target}: {error}"))
        return
    script_error = await run_install_script(settings, target)
    if script_error is not None:
        if old is not None:
            back = await asyncio.to_thread(swap_into_place, old, target)
            remove_tree(back)
        else:
            remove_tree(target)
        _failed(pack.outcome, script_error)
        return
    remove_tree(old)
    pack.outcome.status = "ok"


# --- reporting -----------------------------------------------------------------------------------


def _failed(outcome: PackOutcome, error: IgnitionError, status: str = "failed") -> PackOutcome:
    outcome.status = status
    outcome.error = str(error)
    outcome.code = error.code
    return outcome


def _say(display: RunDisplay, outcome: PackOutcome) -> None:
    at = outcome.version or (outcome.commit or "")[:12] or "?"
    guess = " (guessed)" if outcome.guess else ""
    if outcome.in_place and outcome.source == "python":
        warned = f" (warning: {'; '.join(outcome.warnings)})" if outcome.warnings else ""
        display.say(f"nodes: {outcome.status:<7} python {outcome.name}{warned}")
    elif outcome.in_place:
        display.say(f"nodes: {outcome.status:<7} {outcome.folder or outcome.name} @ {at}{guess}")
    else:
        display.say(f"nodes: {outcome.status.upper()}{guess}: {outcome.error}")
