"""The parts of `ignition start` that other modules own, called through one seam each.

`ignition start` (run/pod.py) only sequences them; what each does lives in its own module:

    prepare_privacy       hosts blocklist; returns opt-out env vars for every child   privacy/
    monitor_connections   background loop logging outbound connections             privacy/
    prepare_storage       persistent model store; returns extra ComfyUI arguments   place/store
    comfyui_listen        where ComfyUI binds (loopback behind the front door)      run/frontdoor
    side_services         file browser and front door, supervised beside ComfyUI    run/filebrowser,
                                                                                    run/frontdoor
    comfyui_access        how to reach ComfyUI (URL, login, token), announced once  run/access
    provision             downloads the requested models; True when all are placed  pipeline
    provision_nodes       custom node packs (before ComfyUI starts); their report   nodes_pipeline
    nuke                  the wipe on hard stop; returns its report as lines        nuke

Tests and unusual builds pass their own `Steps`; `default_steps()` wires the real modules.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TypeVar

from ignition import credentials, nuke, privacy
from ignition.errors import IgnitionError
from ignition.nodes_pipeline import provision_nodes
from ignition.pipeline import provision
from ignition.place import store
from ignition.privacy.monitor import monitor_forever
from ignition.progress import RunDisplay
from ignition.report import ProvisionReport
from ignition.run import access, filebrowser, frontdoor
from ignition.run.comfyui import Listen
from ignition.run.service import ServiceSpec
from ignition.run.startup_log import LogLines
from ignition.settings import Settings

log = logging.getLogger("ignition.run")
_T = TypeVar("_T")


@dataclass(frozen=True)
class SideService:
    """A service supervised beside ComfyUI."""

    name: str
    # Called before every (re)start (it may rewrite config files); None: switched off.
    build: Callable[[], ServiceSpec | None]
    # Shown once at start; may carry a password generated for this pod (unmasked on stdout only).
    announcement: Sequence[str] = ()


@dataclass(frozen=True)
class Steps:
    prepare_privacy: Callable[[Settings], Mapping[str, str]]
    monitor_connections: Callable[[Settings], Awaitable[None]]
    prepare_storage: Callable[[Settings], Sequence[str]]
    comfyui_listen: Callable[[Settings], Listen]
    side_services: Callable[[Settings], Sequence[SideService]]
    comfyui_access: Callable[[Settings], Sequence[str]]
    provision: Callable[[Settings], Awaitable[bool]]
    provision_nodes: Callable[[Settings], Awaitable[ProvisionReport]]
    nuke: Callable[[Settings], Sequence[str]]


def default_steps() -> Steps:
    return Steps(
        prepare_privacy=privacy.apply,
        monitor_connections=monitor_forever,
        prepare_storage=store.comfyui_store_args,
        comfyui_listen=comfyui_listen,
        side_services=side_services,
        comfyui_access=functools.partial(access.comfyui_access_lines, show_token=True),
        provision=download_models,
        provision_nodes=install_nodes,
        nuke=wipe,
    )


def comfyui_listen(settings: Settings) -> Listen:
    host, port = frontdoor.comfyui_bind(settings)
    return Listen(host, port)


def side_services(settings: Settings) -> list[SideService]:
    services = [
        SideService("frontdoor", functools.partial(frontdoor.frontdoor_service, settings)),
    ]
    if not settings.filebrowser_enabled:
        services.append(
            SideService(
                filebrowser.SERVICE_NAME,
                functools.partial(filebrowser.filebrowser_service, settings),
            )
        )
    else:
        # Fetched once, here: only this first lookup knows whether it was just generated, which
        # decides whether the announcement may show it.
        password = credentials.filebrowser_password(settings)
        services.append(
            SideService(
                filebrowser.SERVICE_NAME,
                functools.partial(filebrowser.filebrowser_service, settings, password=password),
                filebrowser.filebrowser_announcement(settings, password),
            )
        )
    return services


async def download_models(settings: Settings) -> bool:
    """The download pipeline, its progress lines in the start-up log, its failures named."""
    display = RunDisplay(settings.status_file, stream=LogLines(log), tty=False)
    report = await provision(settings, display=display)
    for outcome in report.outcomes:
        if not outcome.in_place:
            problem = outcome.error or outcome.status
            hint = f" — {outcome.hint}" if outcome.hint else ""
            log.error("downloads: %s failed: %s%s", outcome.name, problem, hint)
    if report.outcomes:
        log.info(
            "downloads: %d of %d in place",
            sum(o.in_place for o in report.outcomes),
            len(report.outcomes),
        )
    return report.ok


async def install_nodes(settings: Settings) -> ProvisionReport:
    """The node pack pipeline, its lines in the start-up log, each failure named."""
    display = RunDisplay(None, stream=LogLines(log), tty=False)
    report = await provision_nodes(settings, display=display)
    if report.packs:
        log.info(
            "nodes: %d of %d pack(s) in place",
            sum(p.in_place for p in report.packs),
            len(report.packs),
        )
    return report


def advisory(settings: Settings, what: str, step: Callable[[Settings], _T], fallback: _T) -> _T:
    """Run a set-up step whose failure must not stop the pod or worker: logged, `fallback` used."""
    try:
        return step(settings)
    except (OSError, IgnitionError) as error:
        log.error("%s: set-up failed, continuing without it: %s", what, error)
        return fallback


async def provision_models(steps: Steps, settings: Settings, *, without: str) -> bool:
    """`steps.provision`, with any failure logged; `without` says what runs without the models
    ("ComfyUI runs without them", "jobs that need them will fail")."""
    try:
        ok = await steps.provision(settings)
    except (OSError, IgnitionError) as error:
        log.error("downloads: %s", error)
        ok = False
    if not ok:
        log.error("downloads: some models are missing; see above. %s", without)
    return ok


async def provision_packs(steps: Steps, settings: Settings) -> ProvisionReport | None:
    """`steps.provision_nodes`, with any failure logged (None: the step itself failed)."""
    try:
        report = await steps.provision_nodes(settings)
    except (OSError, IgnitionError) as error:
        log.error("nodes: %s", error)
        return None
    if not all(pack.in_place for pack in report.packs):
        log.error("nodes: some packs are missing; see above. ComfyUI runs without them")
    return report


def wipe(settings: Settings) -> list[str]:
    return nuke.describe(nuke.nuke(settings))
