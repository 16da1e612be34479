"""Passwords and tokens Ignition generates when the user set none, kept across restarts.

A generated secret is stored in `$WORKSPACE/.ignition/secrets.json` (directory 0700, file 0600) so
the password printed once at first start keeps working after a restart, and so the file browser
and the ComfyUI front door share one password. A value the user set always wins and is never
written to disk.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from ignition.atomic import write_atomic
from ignition.settings import Settings

_FILEBROWSER_PASSWORD = "filebrowser_password"  # noqa: S105 - a key name
_COMFYUI_API_TOKEN = "comfyui_api_token"  # noqa: S105 - a key name, not a secret


@dataclass(frozen=True)
class Secret:
    value: str
    generated: bool  # True: made by Ignition and worth printing once

    def __repr__(self) -> str:
        return f"Secret(value='**********', generated={self.generated})"


def secrets_file(settings: Settings) -> Path:
    return settings.workspace / ".ignition" / "secrets.json"


def filebrowser_password(settings: Settings) -> Secret:
    return _given_or_stored(settings, settings.filebrowser_password, _FILEBROWSER_PASSWORD, 24)


def comfyui_password(settings: Settings) -> Secret:
    """One password to remember: ComfyUI's defaults to the file browser's."""
    if settings.comfyui_password is not None:
        return Secret(settings.comfyui_password.get_secret_value(), generated=False)
    return filebrowser_password(settings)


def comfyui_api_token(settings: Settings) -> Secret:
    return _given_or_stored(settings, settings.comfyui_api_token, _COMFYUI_API_TOKEN, 48)


def _given_or_stored(settings: Settings, given: SecretStr | None, key: str, length: int) -> Secret:
    if given is not None:
        return Secret(given.get_secret_value(), generated=False)
    path = secrets_file(settings)
    stored = _read(path)
    if key in stored:
        return Secret(stored[key], generated=False)
    # token_urlsafe's alphabet ([A-Za-z0-9_-]) is safe in headers, cookies, URLs and config files:
    # no quoting bugs, no header injection.
    value = secrets.token_urlsafe(length)[:length]
    stored[key] = value
    _write(path, stored)
    return Secret(value, generated=True)


def _read(path: Path) -> dict[str, str]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return {str(k): str(v) for k, v in data.items()} if isinstance(data, dict) else {}


def _write(path: Path, data: dict[str, str]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    path.parent.chmod(0o700)
    # 0600 from the first byte: no window in which the secret is world-readable.
    write_atomic(path, json.dumps(data, indent=2, sort_keys=True), mode=0o600)
