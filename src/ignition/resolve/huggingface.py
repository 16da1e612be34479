"""Hugging Face: a repo file (or a repo's root-level weights) → URL, sha256, size, folder.

API facts (PROTOCOLS.md): HEAD {endpoint}/{repo}/resolve/{rev}/{path} answers LFS files with a
302 to a CDN carrying X-Linked-Etag (the sha256) and X-Linked-Size; small files get a 200. The
tree API lists a repo with lfs.oid (sha256) and sizes, paged by `Link: rel="next"`. Errors carry
X-Error-Code: GatedRepo, RepoNotFound, EntryNotFound, RevisionNotFound.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath
from urllib.parse import quote

from ignition._http import HttpClient, HttpError, raise_for_status
from ignition.catalog import load_catalog
from ignition.comfyui_folders import (
    DEFAULT_FOLDER,
    WEIGHT_EXTENSIONS,
    huggingface_folder,
    normalise_folder,
    sanitise_filename,
)
from ignition.errors import (
    GatedModelError,
    IgnitionError,
    ModelNotFoundError,
    RateLimitedError,
    ResolveError,
    TokenMissingError,
)
from ignition.records import HuggingFaceRef, ResolvedFile
from ignition.settings import Settings

_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_MAX_CANDIDATES_SHOWN = 8


async def resolve_huggingface(
    client: HttpClient, settings: Settings, ref: HuggingFaceRef
) -> list[ResolvedFile]:
    """One file → HEAD its resolve URL; a bare repo → its root-level weight files."""
    try:
        if ref.path is not None:
            return [await _resolve_file(client, settings, ref, ref.path)]
        return await _resolve_repo(client, settings, ref)
    except HttpError as error:
        raise explain_huggingface_error(error, ref, settings) from None


def download_url(settings: Settings, ref: HuggingFaceRef, path: str) -> str:
    return f"{settings.hf_endpoint}/{ref.repo}/resolve/{quote(ref.revision, safe='')}/{quote(path)}"


async def _resolve_file(
    client: HttpClient, settings: Settings, ref: HuggingFaceRef, path: str
) -> ResolvedFile:
    url = download_url(settings, ref, path)
    async with client.get(url, method="HEAD", stop_at_other_host=True) as response:
        if response.status >= 400:
            await raise_for_status(response)
        headers = response.headers
        linked_etag = headers.get("X-Linked-Etag", "").removeprefix("W/").strip('"').lower()
        linked_size = headers.get("X-Linked-Size")
        # A 200 (small, non-LFS file) carries its exact size; its ETag is a git sha1, not sha256.
        plain_size = response.content_length if response.status == 200 else None
    sha256 = linked_etag if _SHA256.match(linked_etag) else None
    size = int(linked_size) if linked_size and linked_size.isdigit() else plain_size
    return _resolved(settings, ref, path, sha256, size)


async def _resolve_repo(
    client: HttpClient, settings: Settings, ref: HuggingFaceRef
) -> list[ResolvedFile]:
    listing = (
        f"{settings.hf_endpoint}/api/models/{ref.repo}/tree/{quote(ref.revision, safe='')}"
        "?recursive=true"
    )
    root: list[ResolvedFile] = []
    elsewhere: list[str] = []
    async for page in client.get_json_pages(listing):
        for entry in page if isinstance(page, list) else []:
            if not isinstance(entry, dict) or entry.get("type") != "file":
                continue
            path = str(entry.get("path", ""))
            if PurePosixPath(path).suffix.lower() not in WEIGHT_EXTENSIONS:
                continue
            if "/" in path:  # diffusers sub-folders (transformer/, vae/ …) are not for ComfyUI
                elsewhere.append(path)
                continue
            lfs = entry.get("lfs")
            lfs = lfs if isinstance(lfs, dict) else {}
            oid = str(lfs.get("oid") or "").lower()
            size = lfs.get("size", entry.get("size"))
            root.append(
                _resolved(
                    settings,
                    ref,
                    path,
                    oid if _SHA256.match(oid) else None,
                    size if isinstance(size, int) else None,
                )
            )
    if not root:
        shown = ", ".join(elsewhere[:_MAX_CANDIDATES_SHOWN]) or "none"
        more = f" and {len(elsewhere) - _MAX_CANDIDATES_SHOWN} more" if len(elsewhere) > 8 else ""
        raise ModelNotFoundError(
            f"{ref.repo} has no weight files at its root; weight files elsewhere: {shown}{more}",
            hint=f"name the file: {ref.repo}/<path/to/file.safetensors>",
        )
    return root


def _resolved(
    settings: Settings, ref: HuggingFaceRef, path: str, sha256: str | None, size: int | None
) -> ResolvedFile:
    filename = sanitise_filename(ref.filename or PurePosixPath(path).name)
    warnings: list[str] = []
    folder = _folder(ref, path, filename)
    if folder is None:
        folder = DEFAULT_FOLDER
        warnings.append(
            f"{ref.repo}/{path}: no folder known, using {DEFAULT_FOLDER}; "
            f"add ':folder' to the entry to choose"
        )
    name = ref.catalog_name or (f"{ref.repo}/{path}" if ref.path is None else ref.text)
    return ResolvedFile(
        ref=ref,
        source="huggingface",
        name=name,
        url=download_url(settings, ref, path),
        filename=filename,
        folder=folder,
        expected_sha256=sha256,
        expected_size=size,
        size_estimate=size,
        warnings=tuple(warnings),
    )


def _folder(ref: HuggingFaceRef, path: str, filename: str) -> str | None:
    """Override, then the catalog, then the repo path, then a catalog file of the same name."""
    if ref.folder is not None:
        return normalise_folder(ref.folder)
    if ref.catalog_folder is not None:
        return normalise_folder(ref.catalog_folder)
    from_path = huggingface_folder(path)
    if from_path is not None:
        return from_path
    for entry in load_catalog().values():
        if PurePosixPath(entry.path).name == filename:
            return entry.folder
    return None


def explain_huggingface_error(
    error: HttpError, ref: HuggingFaceRef, settings: Settings
) -> IgnitionError:
    """A Hugging Face answer → the error named after the user's situation (X-Error-Code first)."""
    code = error.headers.get("X-Error-Code", "")
    message = error.headers.get("X-Error-Message", "") or _excerpt(error.body)
    repo_url = f"{settings.hf_endpoint}/{ref.repo}"
    what = f"Hugging Face {ref.text!r}"
    if code == "GatedRepo":
        has_token = settings.hf_token is not None
        return GatedModelError(
            f"{what}: {ref.repo} is gated"
            + ("; the HF_TOKEN account has not been granted access" if has_token else ""),
            hint=f"accept the license at {repo_url} and set HF_TOKEN"
            + (" (a token of the account that accepted it)" if has_token else ""),
        )
    if code == "RepoNotFound":
        return ModelNotFoundError(
            f"{what}: repo {ref.repo} does not exist, or is private",
            hint="check the repo id; for a private repo set HF_TOKEN",
        )
    if code == "RevisionNotFound":
        return ModelNotFoundError(
            f"{what}: {ref.repo} has no revision {ref.revision!r}",
            hint="check the branch, tag or commit after '@'",
        )
    if code == "EntryNotFound" or error.status == 404:
        return ModelNotFoundError(
            f"{what}: {ref.repo} has no file {ref.path!r} at {ref.revision}",
            hint=f"check the file path at {repo_url}/tree/{ref.revision}",
        )
    if error.status == 401:
        return TokenMissingError(
            f"{what}: Hugging Face rejected HF_TOKEN ({message or 'invalid credentials'})",
            hint="create a read token at https://huggingface.co/settings/tokens and set HF_TOKEN",
        )
    if error.status == 429:
        return RateLimitedError(f"{what}: Hugging Face kept answering 429 (rate limited)")
    return ResolveError(
        f"{what}: Hugging Face answered HTTP {error.status} ({message or 'no details'})",
        hint="Hugging Face may be down; run again later",
    )


def _excerpt(body: str) -> str:
    return body.strip().replace("\n", " ")[:200]
