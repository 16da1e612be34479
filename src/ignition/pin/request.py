"""What a run is asked to provision: the env lists, IGNITION_MANIFEST's lists, and its lock.

Without a manifest the env lists are all there is. With one, its lists are added to the env
lists (manifest first: an entry in both is one entry, the second a harmless duplicate); its
`python` entries go to the node pipeline's one requirements pass. With a lock (IGNITION_LOCK,
else `ignition.lock` beside the manifest) the manifest's part is not resolved at all: the locked
files, packs and Python packages are provisioned exactly, and only env-list entries the manifest
does not name are resolved, each with a warning that it is not pinned.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ignition._http import HttpClient, redact_url
from ignition.errors import ConfigError, IgnitionError, LockfileError
from ignition.pin.lockfile import LOCK_NAME, Lockfile, differences, inputs_of, parse_lock
from ignition.settings import Settings
from ignition.spec.manifest import PodManifest, beside, is_url, load_manifest, read_text_source
from ignition.spec.parse import parse_specs
from ignition.spec.workflow import split_sources


@dataclass
class Request:
    # The settings to parse and resolve: env lists plus (unlocked) the manifest's lists.
    settings: Settings
    lock: Lockfile | None = None
    lock_origin: str = ""
    # Keys of the manifest's model entries: with a lock, refs with these keys are served by it.
    pinned_keys: frozenset[tuple[str, ...]] = frozenset()
    # The manifest or lock could not be used: reported as a failed entry, env lists still run.
    problem: IgnitionError | None = None
    notes: list[str] = field(default_factory=list)  # said once at the start of the run
    # The manifest's `python` entries (unlocked; with a lock its `python` section stands in).
    python: tuple[str, ...] = ()


async def gather_request(client: HttpClient, settings: Settings) -> Request:
    """Load IGNITION_MANIFEST and its lock (if any) and say what this run provisions."""
    source = settings.ignition_manifest.strip()
    lock_source = settings.ignition_lock.strip()
    if not source and not lock_source:
        return Request(settings)
    try:
        manifest = await load_manifest(client, source) if source else None
        lock_origin = lock_source or beside(source, LOCK_NAME)
        lock = await load_lock(client, lock_origin, required=bool(lock_source))
    except ConfigError as error:
        return Request(settings, problem=error)
    if lock is None:
        assert manifest is not None
        return Request(merged_settings(settings, manifest), python=manifest.python)
    request = Request(
        merged_settings(settings, manifest, locked=True),
        lock=lock,
        lock_origin=lock_origin,
        pinned_keys=model_keys(manifest) if manifest is not None else frozenset(),
    )
    shown = redact_url(lock_origin) if is_url(lock_origin) else lock_origin
    request.notes.append(
        f"pinned by {shown}: {len(lock.models)} model files, {len(lock.packs)} node packs, "
        f"{len(lock.python.packages)} Python packages, verified exactly"
    )
    if manifest is not None:
        # Workflow texts are not read on a locked start: compare the lists only.
        stale = differences(lock.inputs, inputs_of(manifest, lock.inputs.workflows))
        if stale:
            request.notes.append(
                f"warning: {shown} was made from another manifest ({'; '.join(stale)}); "
                "provisioning the locked set: run `ignition lock` to update it"
            )
    return request


async def load_lock(client: HttpClient, origin: str, *, required: bool) -> Lockfile | None:
    """The lock at `origin`; None when it is absent and `required` is False."""
    text = await read_text_source(client, origin, what="lock")
    shown = redact_url(origin) if is_url(origin) else origin
    if text is None:
        if required:
            raise LockfileError(f"lock {shown} does not exist", hint="check IGNITION_LOCK")
        return None
    return parse_lock(text, origin=shown)


def merged_settings(
    settings: Settings, manifest: PodManifest | None, *, locked: bool = False
) -> Settings:
    """`settings` with the manifest's model and node lists and workflows put before the env
    lists'; `locked`: without its nodes and workflows (their packs and models are in the lock)."""
    if manifest is None:
        return settings
    env_workflows = split_sources(settings.comfyui_workflows)
    if not locked:
        workflows = [*manifest.workflow_sources(), *env_workflows]
        nodes = [*manifest.nodes, settings.comfyui_nodes]
    else:
        in_manifest = set(manifest.workflow_sources())
        workflows = [source for source in env_workflows if source not in in_manifest]
        nodes = [settings.comfyui_nodes]  # the lock's packs win over an env entry for one
    return settings.model_copy(
        update={
            "civitai_models": "\n".join([*manifest.civitai, settings.civitai_models]),
            "huggingface_models": "\n".join([*manifest.huggingface, settings.huggingface_models]),
            "comfyui_nodes": "\n".join(nodes).strip("\n"),
            "comfyui_workflows": "\n".join(workflows),
        }
    )


def manifest_only(settings: Settings, manifest: PodManifest) -> Settings:
    """Settings that ask for exactly the manifest's models (what `ignition lock` resolves)."""
    empty = settings.model_copy(
        update={
            "civitai_models": "",
            "huggingface_models": "",
            "comfyui_nodes": "",
            "comfyui_workflows": "",
            "ignition_manifest": "",
            "ignition_lock": "",
        }
    )
    return merged_settings(empty, manifest)


def model_keys(manifest: PodManifest) -> frozenset[tuple[str, ...]]:
    parsed = parse_specs("\n".join(manifest.civitai), "\n".join(manifest.huggingface))
    return frozenset(ref.key for ref in parsed.refs)
