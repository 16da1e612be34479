"""Passwords and tokens Ignition generates when the user set none, kept across restarts.

A generated secret is stored in `$WORKSPACE/.ignition/secrets.json` (directory 0700, file 0600) so
the password printed once at first start keeps working after a restart, and so the file browser
and the ComfyUI front door share one password. A value the user set wins and is never written to
disk, unless it is weak or well-known (ignition.secret_strength): then the generated one is used,
and `Secret.refused` says why, for the start-up log.

The same store keeps the front door's session key and the date its sessions end: the session
cookie is signed with it, so replacing the key (`rotate_session_key`) logs every browser out.
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from pydantic import SecretStr

from ignition.atomic import write_atomic
from ignition.secret_strength import password_weakness, token_weakness
from ignition.settings import Settings

_FILEBROWSER_PASSWORD = "filebrowser_password"  # noqa: S105 - a key name
_COMFYUI_API_TOKEN = "comfyui_api_token"  # noqa: S105 - a key name, not a secret
_SESSION_KEY = "comfyui_session_key"
_SESSION_ENDS = "comfyui_session_ends"  # unix seconds, as text
SESSION_LIFETIME_S = 30 * 24 * 3600


@dataclass(frozen=True)
class Secret:
    value: str
    generated: bool  # True: made by Ignition and worth printing once
    refused: str | None = None  # the user's value was refused (why); this one replaces it

    def __repr__(self) -> str:
        return f"Secret(value='**********', generated={self.generated}, refused={self.refused!r})"


@dataclass(frozen=True)
class SessionKey:
    key: str
    ends: int  # unix seconds: no session signed with this key is accepted after it


def secrets_file(settings: Settings) -> Path:
    return settings.workspace / ".ignition" / "secrets.json"


def filebrowser_password(settings: Settings) -> Secret:
    return _given_or_stored(
        settings, settings.filebrowser_password, _FILEBROWSER_PASSWORD, 24, password_weakness
    )


def comfyui_password(settings: Settings) -> Secret:
    """One password to remember: ComfyUI's defaults to the file browser's."""
    given = settings.comfyui_password
    if given is not None:
        why = password_weakness(given.get_secret_value())
        if why is None:
            return Secret(given.get_secret_value(), generated=False)
        fallback = filebrowser_password(settings)
        return Secret(fallback.value, generated=fallback.generated, refused=why)
    return filebrowser_password(settings)


def comfyui_api_token(settings: Settings) -> Secret:
    return _given_or_stored(
        settings, settings.comfyui_api_token, _COMFYUI_API_TOKEN, 48, token_weakness
    )


def refusal_warnings(settings: Settings) -> list[str]:
    """One line per secret the user set that is refused, saying why and what is used instead.

    Looks at the settings only (generating nothing), so the generated replacement is still new,
    and printed once, when the service that needs it fetches it.
    """
    checks = (
        ("FILEBROWSER_PASSWORD", settings.filebrowser_password, password_weakness, "a generated "
         "password (the file browser's, which the ComfyUI login shares)"),
        ("COMFYUI_PASSWORD", settings.comfyui_password, password_weakness,
         "the file browser's password"),
        ("COMFYUI_API_TOKEN", settings.comfyui_api_token, token_weakness, "a generated token"),
    )  # fmt: skip
    store = secrets_file(settings)
    return [
        f"{name} is refused ({why}): anyone could guess it on this public port. Using {instead} "
        f"instead: printed below when it is new, and kept root-only in {store}. To choose your "
        f"own, set {name} to a long random value "
        "(`python3 -c 'import secrets; print(secrets.token_urlsafe(24))'`)."
        for name, given, weakness, instead in checks
        if given is not None and (why := weakness(given.get_secret_value())) is not None
    ]


def session_key(settings: Settings) -> SessionKey:
    """The front door's session signing key; a new one once the current one's sessions end."""
    path = secrets_file(settings)
    stored = _read(path)
    ends = stored.get(_SESSION_ENDS, "")
    if _SESSION_KEY in stored and ends.isdigit() and int(ends) > time.time():
        return SessionKey(stored[_SESSION_KEY], int(ends))
    return rotate_session_key(settings)


def rotate_session_key(settings: Settings) -> SessionKey:
    """A new session key: every session cookie signed with the old one stops working."""
    path = secrets_file(settings)
    stored = _read(path)
    fresh = SessionKey(secrets.token_urlsafe(32), int(time.time()) + SESSION_LIFETIME_S)
    stored[_SESSION_KEY], stored[_SESSION_ENDS] = fresh.key, str(fresh.ends)
    _write(path, stored)
    return fresh


def _given_or_stored(
    settings: Settings,
    given: SecretStr | None,
    key: str,
    length: int,
    weakness: Callable[[str], str | None],
) -> Secret:
    refused = None
    if given is not None:
        refused = weakness(given.get_secret_value())
        if refused is None:
            return Secret(given.get_secret_value(), generated=False)
    path = secrets_file(settings)
    stored = _read(path)
    if key in stored:
        return Secret(stored[key], generated=False, refused=refused)
    # token_urlsafe's alphabet ([A-Za-z0-9_-]) is safe in headers, cookies, URLs and config files:
    # no quoting bugs, no header injection.
    value = secrets.token_urlsafe(length)[:length]
    stored[key] = value
    _write(path, stored)
    return Secret(value, generated=True, refused=refused)


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
