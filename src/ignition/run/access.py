"""What the user needs to reach ComfyUI: URL, whether a login guards it, how scripts get in.

Printed by `ignition start` (with the generated token, once per start, to the start-up log) and
by `ignition status` (without it: it says where the token is kept).
"""

from __future__ import annotations

from collections.abc import Callable

from pydantic import SecretStr

from ignition import credentials
from ignition.run.frontdoor import USERNAME, comfyui_public_url
from ignition.secret_strength import password_weakness, token_weakness
from ignition.settings import Settings


def comfyui_access_lines(settings: Settings, *, show_token: bool) -> list[str]:
    url = comfyui_public_url(settings)
    if not settings.comfyui_auth:
        return [
            f"ComfyUI: {url}",
            "  Login: OFF (COMFYUI_AUTH=off) — anyone who has this URL can use ComfyUI and run "
            "code on this pod.",
        ]
    password_source = (
        "the COMFYUI_PASSWORD you set"
        if _kept(settings.comfyui_password, password_weakness)
        else "the file browser's password"
    )
    ws_url = "ws" + url.removeprefix("http")
    return [
        f"ComfyUI: {url}",
        f"  Login: on — in a browser, user {USERNAME} with {password_source}.",
        *_token_lines(settings, show_token=show_token),
        "  From scripts, send the token as a Bearer header (?token= where headers are impossible):",
        f'    curl -H "Authorization: Bearer $COMFYUI_API_TOKEN" {url}/system_stats',
        "    python3 -c 'import json, os, urllib.request as u; print(json.load(u.urlopen(u.Request("
        f'"{url}/system_stats", headers={{"Authorization": "Bearer " + '
        'os.environ["COMFYUI_API_TOKEN"]}))))\'',
        f"    websocket: {ws_url}/ws?clientId=<uuid>&token=$COMFYUI_API_TOKEN",
    ]


def _token_lines(settings: Settings, *, show_token: bool) -> list[str]:
    if _kept(settings.comfyui_api_token, token_weakness):
        return ["  API token: the COMFYUI_API_TOKEN you set."]
    if show_token:
        token = credentials.comfyui_api_token(settings).value
        return [f"  API token (generated, kept across restarts): export COMFYUI_API_TOKEN={token}"]
    where = credentials.secrets_file(settings)
    return [f"  API token: generated; `comfyui_api_token` in {where} (root-only)."]


def _kept(given: SecretStr | None, weakness: Callable[[str], str | None]) -> bool:
    """The user set this secret and it is used (a weak one is replaced: ignition.credentials)."""
    return given is not None and weakness(given.get_secret_value()) is None
