"""Advisory system check at start: GPUs, torch/CUDA, free disk, RAM. Warns, never fails.

Each probe is bounded by a timeout: a wedged driver must not hold the pod's start-up hostage.
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
from pathlib import Path

import psutil

from ignition.settings import Settings

log = logging.getLogger("ignition.run")

_PROBE_TIMEOUT_S = 30.0
_LOW_DISK_BYTES = 20 * 1024**3
_LOW_RAM_BYTES = 8 * 1024**3
_GIB = 1024**3
# Run inside COMFYUI_PYTHON, the interpreter ComfyUI will use (it may not be ours).
_TORCH_PROBE = (
    "import json, torch; print(json.dumps({'torch': torch.__version__, "
    "'cuda': torch.version.cuda, 'available': torch.cuda.is_available()}))"
)


async def check_system(settings: Settings) -> None:
    """The quick checks; `check_torch` is separate because importing torch takes seconds."""
    await _check_gpus()
    _check_disk("workspace", settings.workspace)
    _check_disk("container disk", Path("/"))
    _check_ram()


async def _run(*argv: str) -> tuple[int, str]:
    process = await asyncio.create_subprocess_exec(
        *argv, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT
    )
    try:
        out, _ = await asyncio.wait_for(process.communicate(), _PROBE_TIMEOUT_S)
    except TimeoutError:
        return -1, f"no answer within {_PROBE_TIMEOUT_S:.0f} s"
    finally:
        if process.returncode is None:  # timed out, or the pod is stopping meanwhile
            process.kill()
            await process.wait()
    return process.returncode or 0, out.decode("utf-8", errors="replace").strip()


async def _check_gpus() -> None:
    if shutil.which("nvidia-smi") is None:
        log.warning("system: no nvidia-smi: no NVIDIA GPU visible; ComfyUI needs --cpu to run")
        return
    code, out = await _run(
        "nvidia-smi",
        "--query-gpu=name,memory.total,driver_version",
        "--format=csv,noheader",
    )
    if code != 0 or not out:
        log.warning("system: nvidia-smi failed (%s): %s", code, out.splitlines()[-1:] or "")
        return
    for index, line in enumerate(out.splitlines()):
        name, memory, driver = (part.strip() for part in [*line.split(","), "?", "?"][:3])
        log.info("system: GPU %d: %s, %s VRAM, driver %s", index, name, memory, driver)


async def check_torch(settings: Settings) -> None:
    """torch and CUDA versions as COMFYUI_PYTHON sees them; run beside ComfyUI's boot."""
    python = settings.comfyui_python
    try:
        code, out = await _run(python, "-c", _TORCH_PROBE)
    except OSError as error:
        log.warning("system: COMFYUI_PYTHON %s cannot run: %s", python, error)
        return
    try:
        found = json.loads(out.splitlines()[-1]) if code == 0 and out else None
    except ValueError:
        found = None
    if not isinstance(found, dict):
        last = out.splitlines()[-1] if out else f"exit code {code}"
        log.warning("system: torch is not importable by %s: %s", python, last)
        return
    log.info(
        "system: torch %s, CUDA %s (%s)",
        found.get("torch"),
        found.get("cuda") or "none",
        "GPU usable" if found.get("available") else "no usable GPU",
    )


def _check_disk(label: str, path: Path) -> None:
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    try:
        usage = shutil.disk_usage(probe)
    except OSError as error:
        log.warning("system: cannot read free space of %s: %s", path, error)
        return
    log.info(
        "system: %s %s: %.1f GiB free of %.1f GiB",
        label,
        path,
        usage.free / _GIB,
        usage.total / _GIB,
    )
    if usage.free < _LOW_DISK_BYTES:
        log.warning("system: less than %d GiB free on %s", _LOW_DISK_BYTES // _GIB, path)


def _check_ram() -> None:
    memory = psutil.virtual_memory()
    log.info(
        "system: RAM %.1f GiB available of %.1f GiB", memory.available / _GIB, memory.total / _GIB
    )
    if memory.total < _LOW_RAM_BYTES:
        log.warning("system: under %d GiB RAM; large models may not load", _LOW_RAM_BYTES // _GIB)
