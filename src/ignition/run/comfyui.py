"""ComfyUI's command line: code from COMFYUI_DIR, data under $WORKSPACE/ComfyUI, flags from env.

    COMFYUI_PYTHON main.py  <COMFY_FLAGS…>  --enable-manager [--disable-manager-ui]
                            <storage args…>  --database-url sqlite:///…/user/comfyui.db
                            --base-directory $WORKSPACE/ComfyUI  --listen HOST --port PORT

Flags that only some ComfyUI versions know (Manager, database) are passed when the checkout's
argument parser declares them: an unknown flag makes ComfyUI exit 2.

Our own flags come last: ComfyUI's argparse keeps the last value, so a stray `--port` in
COMFY_FLAGS cannot move ComfyUI away from where the front door and the readiness probe look.
"""

from __future__ import annotations

import shlex
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ignition.errors import ConfigError
from ignition.run.child_env import inherited_for_comfyui
from ignition.run.service import ServiceSpec
from ignition.run.urls import public_url
from ignition.settings import Settings

NAME = "comfyui"
# ComfyUI-Manager's restart request: with this env var set it touches `<value>.reboot` and exits.
SESSION_ENV = "__COMFY_CLI_SESSION__"
_OWN_FLAGS = ("--listen", "--port", "--base-directory", "--database-url")


@dataclass(frozen=True)
class Listen:
    """Where ComfyUI binds: 0.0.0.0:COMFYUI_PORT, or loopback behind the auth front door."""

    host: str
    port: int


# ComfyUI lists custom_nodes/ before anything else and dies if it is missing (a fresh volume).
_BASE_DIRECTORIES = ("custom_nodes", "models", "input", "output", "user")


def prepare_base_directory(settings: Settings) -> None:
    """Create the data folders `--base-directory` expects on a fresh volume."""
    for name in _BASE_DIRECTORIES:
        (settings.comfyui_base / name).mkdir(parents=True, exist_ok=True)


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
    if not _declares(settings.comfyui_dir, "--enable-manager"):
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
        *database_flags(settings),
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
        inherited=inherited_for_comfyui(settings),
        cwd=settings.comfyui_dir,
        ready_url=f"http://{probe_host}:{listen.port}/system_stats",
        public_url=public_url(settings, settings.comfyui_port),
    )


def overridden_flags(settings: Settings) -> list[str]:
    """Flags in COMFY_FLAGS that Ignition sets itself (and which therefore have no effect)."""
    words = comfyui_flags(settings)
    return [flag for flag in _OWN_FLAGS if any(w.split("=")[0] == flag for w in words)]


def database_flags(settings: Settings) -> list[str]:
    """Keep ComfyUI's database with the user data on the volume.

    Some ComfyUI versions put `comfyui.db` beside the code (`COMFYUI_DIR/user/`), which in the
    image is neither persistent nor necessarily writable ("unable to open database file").
    """
    if not _declares(settings.comfyui_dir, "--database-url"):
        return []
    return ["--database-url", f"sqlite:///{settings.comfyui_base / 'user' / 'comfyui.db'}"]


def _declares(comfyui_dir: Path, flag: str) -> bool:
    """Whether this ComfyUI's argument parser knows `flag` (unknown flags make it exit 2)."""
    try:
        declared = (comfyui_dir / "comfy" / "cli_args.py").read_text(encoding="utf-8")
    except OSError:
        return True  # not a checkout we can read: assume a current ComfyUI
    return f'"{flag}"' in declared
