"""ignition.yaml: one file naming everything a pod needs, in the env vars' own grammar.

    version: 1
    models:
      civitai: [128713, "456789:loras"]          # CIVITAI_MODELS entries
      huggingface: [flux1-dev, "owner/repo/f.safetensors"]   # HUGGINGFACE_MODELS entries
    nodes: ["comfyui-impact-pack@8.8.1"]          # COMFYUI_NODES entries
    workflows: [workflows/portrait.json]          # COMFYUI_WORKFLOWS entries
    python: ["onnxruntime-gpu>=1.19"]             # extra packages, torch pinned

Every list also takes one string written exactly as its env var would be. Entries are checked by
the same parsers the env vars go through (spec/parse.py), so a manifest and an env list can never
disagree on what an entry means. Relative workflow paths are relative to the manifest itself.
Any problem is a ManifestError naming the key (and the line and column for YAML syntax).
"""

from __future__ import annotations

import asyncio
import difflib
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urljoin

import yaml

from ignition import bounded_json
from ignition._http import NETWORK_ERRORS, HttpClient, describe_network_error, redact_url
from ignition.errors import DuplicateEntryError, ManifestError
from ignition.spec.entries import split_entries
from ignition.spec.parse import parse_specs

MANIFEST_VERSION = 1
# A manifest is a page of text; anything bigger is not one (and is not read into memory).
MAX_MANIFEST_BYTES = 1 << 20
_TOP_KEYS = ("version", "models", "nodes", "workflows", "python")
_MODEL_KEYS = ("civitai", "huggingface")


@dataclass(frozen=True)
class PodManifest:
    """A parsed manifest: each list's entries, one string per entry, in the manifest's order."""

    origin: str  # the path or (redacted) URL it came from, for messages
    civitai: tuple[str, ...] = ()
    huggingface: tuple[str, ...] = ()
    nodes: tuple[str, ...] = ()
    workflows: tuple[str, ...] = ()  # as written: relative to the manifest's own location
    python: tuple[str, ...] = ()

    def workflow_sources(self) -> list[str]:
        """The workflows as paths or URLs that can be read from here."""
        return [_relative_to(self.origin, entry) for entry in self.workflows]

    def lists(self) -> dict[str, list[str]]:
        """Every list under the names the lock uses for them."""
        return {
            "civitai": list(self.civitai),
            "huggingface": list(self.huggingface),
            "nodes": list(self.nodes),
            "workflows": list(self.workflows),
            "python": list(self.python),
        }


def is_url(source: str) -> bool:
    return source.startswith(("http://", "https://"))


def beside(source: str, name: str) -> str:
    """The file `name` in the same folder as `source` (a path or a URL)."""
    if is_url(source):
        return urljoin(source, name)
    return str(Path(source).expanduser().parent / name)


async def read_text_source(client: HttpClient, source: str, *, what: str) -> str | None:
    """The UTF-8 text at a path or http(s) URL, at most MAX_MANIFEST_BYTES; None when absent
    (no such file, HTTP 404). `what` names the file in messages ("manifest", "lock")."""
    if not is_url(source):
        return await asyncio.to_thread(_read_local, source, what)
    shown = redact_url(source)
    try:
        async with client.get(source) as response:
            if response.status == 404:
                return None
            if response.status >= 300:
                raise ManifestError(
                    f"{what} {shown}: HTTP {response.status}",
                    hint="check the URL; a private file needs a public or raw link",
                )
            data = await bounded_json.read_body(
                response, what=f"{what} {shown}", max_bytes=MAX_MANIFEST_BYTES
            )
    except bounded_json.UntrustedJsonError as error:
        raise ManifestError(str(error), hint=f"point at the {what} itself") from None
    except NETWORK_ERRORS as error:
        raise ManifestError(
            f"{what} {shown} cannot be fetched: {describe_network_error(error)}",
            hint="check the network and the URL",
        ) from None
    return _decode(data, shown, what)


def _read_local(source: str, what: str) -> str | None:
    path = Path(source).expanduser()
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_MANIFEST_BYTES + 1)
    except FileNotFoundError:
        return None
    except OSError as error:
        raise ManifestError(f"{what} {source} cannot be read: {error.strerror or error}") from None
    return _decode(data, source, what)


def _decode(data: bytes, shown: str, what: str) -> str:
    if len(data) > MAX_MANIFEST_BYTES:
        raise ManifestError(
            f"{what} {shown} is larger than {MAX_MANIFEST_BYTES // 1024} KiB",
            hint=f"point at the {what} itself, not at an archive or a page",
        )
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        raise ManifestError(f"{what} {shown} is not UTF-8 text") from None


async def load_manifest(client: HttpClient, source: str) -> PodManifest:
    """Read and parse the manifest at `source` (IGNITION_MANIFEST, `--manifest`)."""
    text = await read_text_source(client, source, what="manifest")
    if text is None:
        raise ManifestError(
            f"manifest {redact_url(source) if is_url(source) else source} does not exist",
            hint="check IGNITION_MANIFEST / --manifest",
        )
    return parse_manifest(text, origin=source)


def parse_manifest(text: str, *, origin: str) -> PodManifest:
    """Validate a manifest's text; the first problem found raises ManifestError."""
    shown = redact_url(origin) if is_url(origin) else origin
    try:
        document = yaml.safe_load(text)
    except RecursionError:  # PyYAML composes nested collections recursively
        raise ManifestError(f"{shown}: nested too deeply to be a manifest") from None
    except yaml.MarkedYAMLError as error:
        mark = error.problem_mark or error.context_mark
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = error.problem or error.context or "invalid YAML"
        raise ManifestError(f"{shown}: YAML syntax error{where}: {problem}") from None
    except yaml.YAMLError as error:
        raise ManifestError(f"{shown}: not YAML ({error})") from None
    if not isinstance(document, dict):
        raise ManifestError(
            f"{shown}: the top level must be a mapping (version: 1, models: …), "
            f"not {_kind(document)}"
        )
    _check_keys(document, _TOP_KEYS, "", shown)
    version = document.get("version")
    if "version" not in document:
        raise ManifestError(f"{shown}: no `version` key", hint="start the file with `version: 1`")
    if version != MANIFEST_VERSION or isinstance(version, bool):
        raise ManifestError(
            f"{shown}: version {version!r} is not one this Ignition reads "
            f"(it reads version {MANIFEST_VERSION})",
            hint="upgrade Ignition, or write the manifest for version 1",
        )
    models = document.get("models")
    if models is None:
        models = {}
    if not isinstance(models, dict):
        raise ManifestError(
            f"{shown}: models must be a mapping with civitai: and huggingface:, not {_kind(models)}"
        )
    _check_keys(models, _MODEL_KEYS, "models.", shown)
    manifest = PodManifest(
        origin=origin,
        civitai=_entries(models.get("civitai"), "models.civitai", shown),
        huggingface=_entries(models.get("huggingface"), "models.huggingface", shown),
        nodes=_entries(document.get("nodes"), "nodes", shown),
        workflows=_entries(document.get("workflows"), "workflows", shown, split=",\n"),
        python=_entries(document.get("python"), "python", shown, split="\n"),
    )
    _check_models(manifest, shown)
    _check_python(manifest, shown)
    return manifest


def _check_keys(
    mapping: Mapping[Any, Any], allowed: tuple[str, ...], prefix: str, shown: str
) -> None:
    for key in mapping:
        if key in allowed:
            continue
        close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
        guess = f"; did you mean {prefix}{close[0]}?" if close else ""
        raise ManifestError(
            f"{shown}: unknown key {prefix}{key}{guess}",
            hint=f"the keys are {', '.join(prefix + name for name in allowed)}",
        )


def _entries(value: object, key: str, shown: str, split: str | None = None) -> tuple[str, ...]:
    """A list's entries: a YAML list (each item one entry), or one string in the env var's own
    syntax; numbers are fine (a CivitAI id), anything else is a type error naming the key."""
    if value is None:
        return ()
    if isinstance(value, str):
        return tuple(_split(value, split))
    if not isinstance(value, list):
        raise ManifestError(
            f"{shown}: {key} must be a list of entries (or one string, as its env var), "
            f"not {_kind(value)}"
        )
    entries: list[str] = []
    for index, item in enumerate(value):
        if isinstance(item, bool) or not isinstance(item, str | int):
            raise ManifestError(
                f"{shown}: {key}[{index}] must be a string or a number, not {_kind(item)}",
                hint="quote the entry",
            )
        pieces = _split(str(item), split)
        if not pieces:
            raise ManifestError(f"{shown}: {key}[{index}] is empty", hint="remove it")
        entries.extend(pieces)
    return tuple(entries)


def _split(text: str, separators: str | None) -> list[str]:
    if separators is None:
        return [entry for entry in split_entries(text) if entry]
    for separator in separators[1:]:
        text = text.replace(separator, separators[0])
    return [part.strip() for part in text.split(separators[0]) if part.strip()]


def _relative_to(origin: str, entry: str) -> str:
    if is_url(entry):
        return entry
    if is_url(origin):
        return urljoin(origin, entry)
    path = Path(entry).expanduser()
    return str(path if path.is_absolute() else Path(origin).expanduser().parent / path)


def _check_models(manifest: PodManifest, shown: str) -> None:
    """The model entries through the env lists' parser: a bad one is a manifest error here."""
    parsed = parse_specs("\n".join(manifest.civitai), "\n".join(manifest.huggingface))
    problems = [e for e in parsed.errors if not isinstance(e, DuplicateEntryError)]
    if problems:
        first = problems[0]
        more = f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""
        raise ManifestError(
            f"{shown}: models.{first.source}: {first.message}{more}", hint=first.hint
        )


def _check_python(manifest: PodManifest, shown: str) -> None:
    for entry in manifest.python:
        # Options (`--index-url`, `-e`, `-r`) would let a manifest redirect the installer.
        if entry.startswith("-"):
            raise ManifestError(
                f"{shown}: python entry {entry!r} is an installer option, not a package",
                hint='name packages as requirement specifiers, e.g. "onnxruntime-gpu>=1.19"',
            )


def _kind(value: object) -> str:
    if value is None:
        return "empty"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, bool):
        return f"a boolean ({value})"
    return f"{type(value).__name__} {value!r}"
