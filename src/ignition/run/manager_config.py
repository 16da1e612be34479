"""ComfyUI-Manager's config.ini, rewritten at every (re)start to match ENABLE_MANAGER_UI.

The pip package `comfyui_manager` keeps its files in ComfyUI's system user directory
`<user dir>/__manager/` (the `__` prefix keeps it out of ComfyUI's /userdata HTTP API) and reads
`config.ini` there, section `[default]`. Its `network_mode` decides whether it fetches the
custom-node channel lists and registry at boot: `offline` fetches nothing. With the UI off nobody
can browse those lists, so the fetch would be pure start-up delay and outbound traffic.
Every other key is the user's and is kept as found.
"""

from __future__ import annotations

import configparser
import io
from pathlib import Path

from ignition.atomic import write_atomic
from ignition.settings import Settings

_SECTION = "default"
_OFFLINE = "offline"
_PUBLIC = "public"


def manager_config_path(settings: Settings) -> Path:
    return settings.comfyui_base / "user" / "__manager" / "config.ini"


def write_manager_config(settings: Settings, *, ui_enabled: bool) -> Path:
    """Set `network_mode` for this start and return the file's path.

    UI off → `offline`. UI on → `public` (the UI lists and installs nodes from the registry),
    unless the user chose another online mode (`private`, `personal_cloud`), which is kept.
    """
    path = manager_config_path(settings)
    config = configparser.ConfigParser(strict=False, interpolation=None)
    config.read(path, encoding="utf-8")
    if not config.has_section(_SECTION):
        config.add_section(_SECTION)
    current = config.get(_SECTION, "network_mode", fallback=_OFFLINE).strip().lower()
    online = _PUBLIC if current == _OFFLINE else current
    mode = online if ui_enabled else _OFFLINE
    config.set(_SECTION, "network_mode", mode)

    path.parent.mkdir(parents=True, exist_ok=True)
    text = io.StringIO()
    config.write(text)
    write_atomic(path, text.getvalue())
    return path
