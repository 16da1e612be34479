"""A local package index of tiny wheels made by the test, and a venv standing in for ComfyUI's.

A wheel is a zip with the package, `METADATA`, `WHEEL` and `RECORD`; `build_wheel` writes one
with zipfile. The index is a flat folder served to uv/pip with `--find-links` (UV_FIND_LINKS +
UV_OFFLINE in the environment, so nothing reaches PyPI). `make_comfy_python` makes a venv with
the fake `torch` of a given version installed and returns a wrapper around its interpreter that
logs every run to `<venv>/runs.log`: proof of whether anything (pip, uv, install.py) ran.
"""

from __future__ import annotations

import base64
import hashlib
import subprocess
import sys
import zipfile
from pathlib import Path


def build_wheel(index: Path, name: str, version: str, requires: tuple[str, ...] = ()) -> Path:
    """`<name>-<version>-py3-none-any.whl` in `index`: a module `<name>` knowing its version."""
    index.mkdir(parents=True, exist_ok=True)
    module = name.replace("-", "_")
    dist = f"{module}-{version}.dist-info"
    files = {
        f"{module}/__init__.py": f"__version__ = {version!r}\n",
        f"{dist}/METADATA": "Metadata-Version: 2.1\n"
        f"Name: {name}\nVersion: {version}\n"
        + "".join(f"Requires-Dist: {requirement}\n" for requirement in requires),
        f"{dist}/WHEEL": "Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\n"
        "Tag: py3-none-any\n",
    }
    record = [f"{path},sha256={_digest(text)},{len(text.encode())}" for path, text in files.items()]
    record.append(f"{dist}/RECORD,,")
    files[f"{dist}/RECORD"] = "\n".join(record) + "\n"
    wheel = index / f"{module}-{version}-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as bundle:
        for path, text in files.items():
            bundle.writestr(path, text)
    return wheel


def _digest(text: str) -> str:
    raw = hashlib.sha256(text.encode()).digest()
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


def make_comfy_python(venv: Path, index: Path, uv: str, torch_version: str) -> Path:
    """A venv with fake torch installed; returns the logging wrapper of its python."""
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(venv)], check=True)
    real = venv / "bin" / "python"
    subprocess.run(
        [uv, "pip", "install", "-q", "--python", str(real), "--no-index", "--find-links",
         str(index), f"torch=={torch_version}"],
        check=True,
    )  # fmt: skip
    wrapper = venv / "bin" / "comfy-python"
    wrapper.write_text(f'#!/bin/sh\necho "$@" >> {venv}/runs.log\nexec {real} "$@"\n')
    wrapper.chmod(0o755)
    return wrapper


def installed_version(python: Path, name: str) -> str | None:
    done = subprocess.run(
        [str(python), "-c", f"import importlib.metadata as m; print(m.version({name!r}))"],
        capture_output=True,
        text=True,
    )
    return done.stdout.strip() if done.returncode == 0 else None
