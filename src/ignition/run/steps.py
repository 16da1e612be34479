"""The parts of `ignition start` that other modules own, called through one seam each.

`ignition start` (run/pod.py) only sequences them; what each does lives in its own module:

    prepare_privacy       hosts blocklist; returns opt-out env vars for every child    privacy
    monitor_connections   background loop logging outbound connections              privacy
    prepare_storage       persistent model store; returns extra ComfyUI arguments    storage
    comfyui_listen        where ComfyUI binds (loopback behind the auth front door)  frontdoor
    frontdoor_service     Caddy in front of ComfyUI, or None when COMFYUI_AUTH=off  frontdoor
    filebrowser_service   the file browser, or None when FILEBROWSER_ENABLED=false  filebrowser
    provision             downloads the requested models; True when all are placed  pipeline
    nuke                  the wipe on hard stop; returns a one-line report           nuke

Tests and unusual builds pass their own `Steps`; `default_steps()` wires the real modules.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from ignition.pipeline import provision
from ignition.progress import RunDisplay
from ignition.run.comfyui import Listen
from ignition.run.service import ServiceSpec
from ignition.run.startup_log import LogLines
from ignition.settings import Settings

log = logging.getLogger("ignition.run")


@dataclass(frozen=True)
class Steps:
    prepare_privacy: Callable[[Settings], Mapping[str, str]]
    monitor_connections: Callable[[Settings], Awaitable[None]]
    prepare_storage: Callable[[Settings], Sequence[str]]
    comfyui_listen: Callable[[Settings], Listen]
    frontdoor_service: Callable[[Settings], ServiceSpec | None]
    filebrowser_service: Callable[[Settings], ServiceSpec | None]
    provision: Callable[[Settings], Awaitable[bool]]
    nuke: Callable[[Settings], str]


def default_steps() -> Steps:
    return Steps(
        prepare_privacy=_no_privacy,
        monitor_connections=_no_monitor,
        prepare_storage=_no_storage,
        comfyui_listen=_listen_publicly,
        frontdoor_service=_no_service,
        filebrowser_service=_no_service,
        provision=download_models,
        nuke=_no_nuke,
    )


async def download_models(settings: Settings) -> bool:
    """The download pipeline, its progress lines in the start-up log, its failures named."""
    display = RunDisplay(settings.status_file, stream=LogLines(log), tty=False)
    report = await provision(settings, display=display)
    for outcome in report.outcomes:
        if not outcome.in_place:
            log.error("downloads: %s failed: %s", outcome.name, outcome.error or outcome.status)
    if report.outcomes:
        log.info(
            "downloads: %d of %d in place",
            sum(o.in_place for o in report.outcomes),
            len(report.outcomes),
        )
    return report.ok


# --- stand-ins until the owning modules are merged into this build ------------------------------


def _no_privacy(settings: Settings) -> Mapping[str, str]:
    if settings.privacy_mode:
        log.warning("privacy: not available in this build; no telemetry blocking")
    return {}


async def _no_monitor(settings: Settings) -> None:
    return None


def _no_storage(settings: Settings) -> Sequence[str]:
    if settings.persistent_store is not None:
        log.warning("storage: PERSISTENT_STORAGE is not supported by this build; ignored")
    return ()


def _listen_publicly(settings: Settings) -> Listen:
    return Listen("0.0.0.0", settings.comfyui_port)  # noqa: S104 - RunPod's proxy needs 0.0.0.0


def _no_service(settings: Settings) -> ServiceSpec | None:
    return None


def _no_nuke(settings: Settings) -> str:
    return "nothing deleted: this build has no nuke"
