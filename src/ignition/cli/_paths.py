"""Checks of the folders a command was told to use, before any work: one line that names the
setting and the path, instead of an OSError deep inside the pipeline."""

from __future__ import annotations

import argparse
from pathlib import Path

from ignition.errors import ConfigError
from ignition.settings import Settings


def require_model_folders(settings: Settings, args: argparse.Namespace) -> None:
    """The models folder and PERSISTENT_STORAGE must be folders, or not exist yet (they are
    created); a file at that path, or a file where one of its parents should be, is refused."""
    if getattr(args, "models_dir", None) is not None:
        setting = "--models-dir"
    elif settings.models_dir_override is not None:
        setting = "IGNITION_MODELS_DIR"
    else:
        setting = "WORKSPACE"
    require_folder(settings.models_dir, setting)
    if settings.persistent_store is not None:
        require_folder(settings.persistent_store, "PERSISTENT_STORAGE")


def require_folder(path: Path, setting: str) -> None:
    """`path` (named by `setting` in the message) is a folder, or can be created as one."""
    for candidate in (path, *path.parents):
        if candidate.exists() and not candidate.is_dir():
            where = "" if candidate == path else f" ({candidate} is a file)"
            raise ConfigError(
                f"{setting} {str(path)!r} is not a folder{where}",
                hint="give the path of a folder; a missing one is created",
            )
        if candidate.is_dir():
            return
