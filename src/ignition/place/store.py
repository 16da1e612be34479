"""PERSISTENT_STORAGE: where models go, and how ComfyUI is told to look there.

With a store, it is the models root: files land in `<store>/<folder>/<name>` (ComfyUI's own
layout), its staging and locks live in `<store>/.ignition/` (same filesystem: the final move is
an atomic rename), and its manifest is shared by every pod that mounts it. ComfyUI finds the files
through a generated extra_model_paths.yaml rather than symlinks: one file, rewritten at every
start, that cannot dangle, needs no per-file upkeep, shows files added to the store later (another
pod's downloads, ComfyUI-Manager's) and leaves nothing in $WORKSPACE/ComfyUI/models for nuke to
weigh. `is_default: true` puts the store first in each folder's list, so ComfyUI (and custom nodes
that save into a folder's first path) writes new models to the store too.
"""

from __future__ import annotations

from pathlib import Path

import yaml

from ignition.atomic import write_atomic
from ignition.comfyui_folders import COMFYUI_FOLDERS, LEGACY_FOLDERS
from ignition.errors import ConfigError
from ignition.settings import Settings

EXTRA_MODEL_PATHS_FILE = "extra_model_paths.yaml"
_SECTION = "ignition_persistent_store"


def models_root(settings: Settings) -> Path:
    """Where provisioning writes: the store when PERSISTENT_STORAGE is set, else the models dir."""
    return settings.persistent_store or settings.models_dir


def comfyui_store_args(settings: Settings) -> list[str]:
    """Extra ComfyUI argv for the store: `["--extra-model-paths-config", <yaml>]`, or `[]` when
    PERSISTENT_STORAGE is none. Writes `<run_dir>/extra_model_paths.yaml` (per pod: the store
    may be mounted at different paths on different pods) and creates the store if missing."""
    store = settings.persistent_store
    if store is None:
        return []
    try:
        store.mkdir(parents=True, exist_ok=True)
        settings.run_dir.mkdir(parents=True, exist_ok=True)
        path = settings.run_dir / EXTRA_MODEL_PATHS_FILE
        write_atomic(path, extra_model_paths_yaml(store), durable=False)
    except OSError as error:
        raise ConfigError(
            f"cannot use PERSISTENT_STORAGE={store}: {error}",
            hint="mount the volume there, point PERSISTENT_STORAGE at a writable folder, "
            "or set PERSISTENT_STORAGE=none",
        ) from error
    return ["--extra-model-paths-config", str(path)]


def extra_model_paths_yaml(store: Path) -> str:
    """ComfyUI's extra-model-paths YAML naming every known model folder under `store`."""
    if "$" in str(store):
        # ComfyUI expands environment variables in base_path; a literal `$` cannot be escaped.
        raise ConfigError(f"PERSISTENT_STORAGE={store} contains '$'", hint="use a path without '$'")
    section: dict[str, object] = {"base_path": str(store.absolute()), "is_default": True}
    for folder in sorted(COMFYUI_FOLDERS):
        # ComfyUI names nested custom-node folders with underscores (ultralytics_bbox).
        section[folder.replace("/", "_")] = f"{folder}/"
    for legacy, current in sorted(LEGACY_FOLDERS.items()):
        # Older files people copied into the store by hand: list both, current name first.
        section[current] = f"{current}/\n{legacy}/\n"
    header = "# Written by Ignition at every start from PERSISTENT_STORAGE; edits are replaced.\n"
    return header + yaml.safe_dump({_SECTION: section}, sort_keys=False, default_flow_style=False)
