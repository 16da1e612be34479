"""Install node packs' Python requirements into COMFYUI_PYTHON's environment, torch untouched.

Every pack's `requirements.txt` is resolved together in ONE `uv pip install --python …` (pip
where uv is absent), under a constraints file that pins the torch, torchvision and torchaudio
already installed: a pack can never swap the CUDA build for another one. When that one pass
fails, each pack is tried alone (`--dry-run`) to find the ones that cannot be met; those fail
with the requirement lines uv named, and the rest install in one more pass. A pack's
`install.py` runs after, as ComfyUI-Manager runs it (its folder as cwd, COMFYUI_PYTHON).

The same pass serves a manifest's `python` entries (each its own item, so a conflicting one is
named and the rest install) and `ignition lock` (`compile_requirements`: `uv pip compile
--generate-hashes` under the same constraints). A locked start installs the compiled set with
`--require-hashes --no-deps`: nothing is resolved again.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from ignition.atomic import write_atomic
from ignition.errors import RequirementsConflictError, RequirementsError
from ignition.settings import Settings, helper_process_env

log = logging.getLogger("ignition.nodes")

PINNED = ("torch", "torchvision", "torchaudio")
# In the ComfyUI folder (beside custom_nodes, which Manager and tests list): which `python`
# packages (a manifest's, or a lock's exact set) are installed, and into which interpreter.
PYTHON_MARKER = ".ignition-python.json"
# What COMFYUI_PYTHON had before Ignition first installed anything (`lock --from-running`).
BASELINE_NAME = ".ignition-python-baseline.json"
_INSTALL_TIMEOUT_S = 1800.0
_SCRIPT_TIMEOUT_S = 900.0
_NAME = re.compile(r"^\s*([A-Za-z0-9][A-Za-z0-9._-]*)")
_DISTRIBUTIONS_SCRIPT = (
    "import importlib.metadata as m, json\n"
    "print(json.dumps({d.metadata['Name']: d.version for d in m.distributions()}))\n"
)
_VERSIONS_SCRIPT = (
    "import importlib.metadata as m, json, sys\n"
    "found = {}\n"
    "for name in sys.argv[1:]:\n"
    "    try: found[name] = m.version(name)\n"
    "    except m.PackageNotFoundError: pass\n"
    "print(json.dumps(found))\n"
)


@dataclass(frozen=True)
class PackRequirements:
    """One pack's requirements file, named for messages."""

    pack: str
    requirements: Path


def requirements_fingerprint(pack_dir: Path) -> str:
    """sha256 over the pack's requirements.txt and install.py (absent files count as empty)."""
    digest = hashlib.sha256()
    for name in ("requirements.txt", "install.py"):
        path = pack_dir / name
        digest.update(name.encode() + b"\0")
        if path.is_file():
            digest.update(path.read_bytes())
        digest.update(b"\0")
    return digest.hexdigest()


def python_marker_current(settings: Settings, requested: list[str]) -> bool:
    """True when the packages `requested` were installed into COMFYUI_PYTHON by an earlier run
    (its marker says so): a warm start runs no installer for them."""
    try:
        found = json.loads((settings.comfyui_base / PYTHON_MARKER).read_text("utf-8"))
    except (OSError, ValueError):
        return False
    return isinstance(found, dict) and found == _marker(settings, requested)


def write_python_marker(settings: Settings, requested: list[str]) -> None:
    text = json.dumps(_marker(settings, requested), indent=2, sort_keys=True) + "\n"
    write_atomic(settings.comfyui_base / PYTHON_MARKER, text)


def _marker(settings: Settings, requested: list[str]) -> dict[str, object]:
    return {"python": settings.comfyui_python, "requested": requested}


def installer(python: str) -> list[str]:
    """`uv pip install --python PY` from Ignition's own environment, or PY's `pip install`."""
    try:
        from uv import find_uv_bin

        return [find_uv_bin(), "pip", "install", "--python", python]
    except (ImportError, FileNotFoundError):
        return [python, "-m", "pip", "install", "--disable-pip-version-check"]


async def pinned_versions(python: str) -> dict[str, str]:
    """The installed versions of torch, torchvision, torchaudio in `python`'s environment."""
    code, out, err = await _run([python, "-c", _VERSIONS_SCRIPT, *PINNED], timeout_s=120)
    if code != 0:
        raise RequirementsError(
            f"COMFYUI_PYTHON {python} cannot be run: {_summary(err)}",
            hint="set COMFYUI_PYTHON to the interpreter ComfyUI runs with",
        )
    found = json.loads(out)
    return {str(name): str(version) for name, version in found.items()}


async def installed_packages(python: str) -> dict[str, str]:
    """Every distribution in `python`'s environment: normalised name → version."""
    code, out, err = await _run([python, "-c", _DISTRIBUTIONS_SCRIPT], timeout_s=120)
    if code != 0:
        raise RequirementsError(f"COMFYUI_PYTHON {python} cannot be run: {_summary(err)}")
    found = json.loads(out)
    return {_normalise(str(name)): str(version) for name, version in found.items()}


def _normalise(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


async def record_baseline(settings: Settings) -> None:
    """Once per workspace, before Ignition first installs packs or packages: what
    COMFYUI_PYTHON has (the image's), so `lock --from-running` can tell what was added since.
    Best effort: without it, --from-running locks no packages and says why."""
    path = settings.comfyui_base / BASELINE_NAME
    if path.exists():
        return
    try:
        packages = await installed_packages(settings.comfyui_python)
    except (RequirementsError, OSError, ValueError) as error:
        log.info("requirements: no baseline of %s: %s", settings.comfyui_python, error)
        return
    document = {"python": settings.comfyui_python, "packages": dict(sorted(packages.items()))}
    await asyncio.to_thread(path.parent.mkdir, parents=True, exist_ok=True)
    write_atomic(path, json.dumps(document, indent=2, sort_keys=True) + "\n")


def read_baseline(settings: Settings) -> dict[str, str] | None:
    try:
        document = json.loads((settings.comfyui_base / BASELINE_NAME).read_text("utf-8"))
        return {str(k): str(v) for k, v in dict(document["packages"]).items()}
    except (OSError, ValueError, KeyError, TypeError):
        return None


async def install_requirements(
    settings: Settings,
    packs: Sequence[PackRequirements],
    workdir: Path,
    *,
    options: Sequence[str] = (),
) -> dict[str, RequirementsError]:
    """Install every pack's requirements together; the packs that failed, with why.
    `options` go to the installer (a lock's `--require-hashes --no-deps`)."""
    failed, _out = await _under_pins(settings, packs, workdir, "install", options)
    return failed


async def compile_requirements(
    settings: Settings, packs: Sequence[PackRequirements], workdir: Path
) -> tuple[str, dict[str, str], dict[str, RequirementsError]]:
    """`uv pip compile --generate-hashes` of every item together beside the installed torch:
    the compiled requirements text, the pins it was resolved against, and the items that
    could not be resolved (the text is then that of the others)."""
    pins = await pinned_versions(settings.comfyui_python)
    failed, out = await _under_pins(settings, packs, workdir, "compile", (), pins)
    return out, pins, failed


async def _under_pins(
    settings: Settings,
    packs: Sequence[PackRequirements],
    workdir: Path,
    verb: str,
    options: Sequence[str],
    pins: dict[str, str] | None = None,
) -> tuple[dict[str, RequirementsError], str]:
    """Run `verb` (install | compile) over `packs` under the torch constraints file."""
    packs = [pack for pack in packs if pack.requirements.is_file()]
    if not packs:
        return {}, ""
    python = settings.comfyui_python
    if pins is None:
        pins = await pinned_versions(python)
    pins_text = "".join(f"{name}=={ver}\n" for name, ver in sorted(pins.items()))
    await asyncio.to_thread(workdir.mkdir, parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("w", dir=workdir, suffix=".constraints.txt") as constraints:
        constraints.write(pins_text)
        constraints.flush()
        if verb == "compile":
            # Compiling installs nothing (alone is already a probe); files are positional.
            command = [*_compiler(python), "--constraint", constraints.name]
            probe: tuple[str, ...] = ()
            flag: tuple[str, ...] = ()
        else:
            command = [*installer(python), *options, "--constraint", constraints.name]
            probe, flag = ("--dry-run",), ("--requirement",)
        return await _install_together(command, packs, pins, (probe, flag))


def _compiler(python: str) -> list[str]:
    from uv import find_uv_bin

    return [
        find_uv_bin(),
        *("pip", "compile", "--python", python, "--generate-hashes"),
        *("--no-header", "--no-annotate", "--quiet"),
    ]


async def _install_together(
    base: list[str],
    packs: list[PackRequirements],
    pins: dict[str, str],
    args: tuple[tuple[str, ...], tuple[str, ...]],
) -> tuple[dict[str, RequirementsError], str]:
    """`args`: the options that make `base` a probe, and the flag before each file."""
    failed: dict[str, RequirementsError] = {}
    remaining = list(packs)
    while remaining:
        files = [arg for pack in remaining for arg in (*args[1], str(pack.requirements))]
        log.info("requirements: resolving for %s", ", ".join(p.pack for p in remaining))
        code, out, err = await _run([*base, *files], timeout_s=_INSTALL_TIMEOUT_S)
        if code == 0:
            return failed, out
        culprits = await _find_culprits(base, remaining, pins, args)
        if not culprits:  # only together do they fail (two packs disagree): all of them fail
            for pack in remaining:
                failed[pack.pack] = RequirementsError(
                    f"{pack.pack}: requirements could not be installed together with "
                    f"{', '.join(p.pack for p in remaining if p is not pack) or 'the others'}: "
                    f"{_summary(err)}"
                )
            return failed, ""
        failed.update(culprits)
        remaining = [pack for pack in remaining if pack.pack not in culprits]
    return failed, ""


async def _find_culprits(
    base: list[str],
    packs: Sequence[PackRequirements],
    pins: dict[str, str],
    args: tuple[tuple[str, ...], tuple[str, ...]],
) -> dict[str, RequirementsError]:
    """Each pack resolved alone (as a probe: nothing installed): the ones that cannot be met."""

    async def alone(pack: PackRequirements) -> RequirementsError | None:
        argv = [*base, *args[0], *args[1], str(pack.requirements)]
        code, _out, err = await _run(argv, timeout_s=_INSTALL_TIMEOUT_S)
        return None if code == 0 else _explain(pack, err, pins)

    answers = await asyncio.gather(*(alone(pack) for pack in packs))
    return {
        pack.pack: error for pack, error in zip(packs, answers, strict=True) if error is not None
    }


def _explain(pack: PackRequirements, err: str, pins: dict[str, str]) -> RequirementsError:
    """Name the pack's requirement lines the installer's message mentions."""
    lowered = err.lower()
    lines = [
        line.strip()
        for line in pack.requirements.read_text("utf-8", "replace").splitlines()
        if (match := _NAME.match(line)) and not line.lstrip().startswith("#")
        if re.search(rf"\b{re.escape(match.group(1).lower())}\b", lowered)
    ]
    pinned = [f"{name}=={ver}" for name, ver in sorted(pins.items()) if name in lowered]
    named = f" ({'; '.join(lines)})" if lines else ""
    if pinned:
        return RequirementsConflictError(
            f"{pack.pack}: its requirements{named} cannot be met beside the installed "
            f"{', '.join(pinned)}: {_summary(err)}"
        )
    return RequirementsError(f"{pack.pack}: its requirements{named} failed: {_summary(err)}")


async def run_install_script(settings: Settings, pack_dir: Path) -> RequirementsError | None:
    """Run the pack's install.py (if any) as ComfyUI-Manager does; the error, or None."""
    if not (pack_dir / "install.py").is_file():
        return None
    log.info("requirements: running %s/install.py", pack_dir.name)
    code, _out, err = await _run(
        [settings.comfyui_python, "install.py"], cwd=pack_dir, timeout_s=_SCRIPT_TIMEOUT_S
    )
    if code == 0:
        return None
    return RequirementsError(f"{pack_dir.name}: install.py failed (exit {code}): {_summary(err)}")


async def _run(
    argv: list[str], *, timeout_s: float, cwd: Path | None = None
) -> tuple[int, str, str]:
    process = await asyncio.create_subprocess_exec(
        *argv,
        cwd=cwd,
        env=helper_process_env({}),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), timeout_s)
    except TimeoutError:
        process.kill()
        await process.wait()
        return 124, "", f"{argv[0]} took longer than {timeout_s:.0f} s"
    return process.returncode or 0, out.decode("utf-8", "replace"), err.decode("utf-8", "replace")


def _summary(text: str) -> str:
    """The installer's message without its chatter, in one line of at most 600 characters."""
    lines = [
        line.strip()
        for line in text.splitlines()
        if line.strip() and not line.startswith(("Using Python", "Resolved", "Audited"))
    ]
    return " ".join(lines)[:600] or "no message"
