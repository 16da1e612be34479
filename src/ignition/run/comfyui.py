"""ComfyUI's command line: code from COMFYUI_DIR, data under $WORKSPACE/ComfyUI, flags from env.

    COMFYUI_PYTHON main.py  <COMFY_FLAGS…>  --enable-manager [--disable-manager-ui]
                            <storage args…>  --base-directory $WORKSPACE/ComfyUI
                            --listen HOST --port PORT

Our own flags come last: ComfyUI's argparse keeps the last value, so a stray `--port` in
COMFY_FLAGS cannot move ComfyUI away from where the front door and the readiness probe look.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ignition.errors import ConfigError
from ignition.run.service import ServiceSpec
from ignition.run.urls import public_url
from ignition.settings import Settings

NAME = "comfyui"
# ComfyUI-Manager's restart request: with this env var set it touches `<value>.reboot` and exits.
SESSION_ENV = "__COMFY_CLI_SESSION__"
_OWN_FLAGS = ("--listen", "--port", "--base-directory")


@dataclass(frozen=True)
class Listen:
    """Where ComfyUI binds: 0.0.0.0:COMFYUI_PORT, or loopback behind the auth front door."""

    host: str
    port: int


def session_path(settings: Settings) -> Path:
    return settings.run_dir / "comfyui-session"


def reboot_marker(settings: Settings) -> Path:
    return Path(f"{session_path(settings)}.reboot")


def comfyui_flags(settings: Settings) -> list[str]:
    """COMFY_FLAGS as argv words (shell quoting rules, so `--x "a b"` stays one value)."""
    try:
        return shlex.split(settings.comfy_flags)
    except ValueError as error:
        raise ConfigError(
            f"COMFY_FLAGS cannot be split into arguments ({error}): {settings.comfy_flags!r}",
            hint="close the quote in COMFY_FLAGS, or remove it",
        ) from error


def manager_flags(settings: Settings, *, ui_enabled: bool) -> list[str]:
    """`--enable-manager`, plus `--disable-manager-ui` unless the UI is wanted.

    A ComfyUI older than the Manager flags rejects them with exit 2, so they are passed only when
    its argument parser declares them.
    """
    if not _declares_manager_flags(settings.comfyui_dir):
        return []
    return ["--enable-manager"] if ui_enabled else ["--enable-manager", "--disable-manager-ui"]


def comfyui_service(
    settings: Settings,
    *,
    listen: Listen,
    ui_enabled: bool,
    extra_args: Sequence[str] = (),
) -> ServiceSpec:
    argv = [
        settings.comfyui_python,
        "main.py",
        *comfyui_flags(settings),
        *manager_flags(settings, ui_enabled=ui_enabled),
        *extra_args,
        "--base-directory",
        str(settings.comfyui_base),
        "--listen",
        listen.host,
        "--port",
        str(listen.port),
    ]
    probe_host = "127.0.0.1" if listen.host in {"0.0.0.0", "::", "0.0.0.0,::"} else listen.host  # noqa: S104
    return ServiceSpec(
        name=NAME,
        argv=tuple(argv),
        env={SESSION_ENV: str(session_path(settings)), "PYTHONUNBUFFERED": "1"},
        cwd=settings.comfyui_dir,
        ready_url=f"http://{probe_host}:{listen.port}/system_stats",
        public_url=public_url(settings, settings.comfyui_port),
    )


def overridden_flags(settings: Settings) -> list[str]:
    """Flags in COMFY_FLAGS that Ignition sets itself (and which therefore have no effect)."""
    words = comfyui_flags(settings)
    return [flag for flag in _OWN_FLAGS if any(w.split("=")[0] == flag for w in words)]


def _declares_manager_flags(comfyui_dir: Path) -> bool:
    try:
        declared = (comfyui_dir / "comfy" / "cli_args.py").read_text(encoding="utf-8")
    except OSError:
        return True  # not a checkout we can read: assume a current ComfyUI
    return '"--enable-manager"' in declared
