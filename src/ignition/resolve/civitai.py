"""CivitAI: a model-version (or model) id → the file to fetch, its sha256 and its folder.

API facts (PROTOCOLS.md): GET /api/v1/model-versions/{id} describes a version and its files;
GET /api/v1/models/{id} lists versions newest first; the bytes come from
/api/download/models/{versionId}?fileId=…, which 307-redirects to presigned storage.
"""

from __future__ import annotations

from typing import Any

from ignition import bounded_json
from ignition._http import HttpClient, HttpError
from ignition.comfyui_folders import civitai_folder, normalise_folder, sanitise_filename
from ignition.errors import (
    EarlyAccessError,
    IgnitionError,
    ModelNotFoundError,
    RateLimitedError,
    ResolveError,
    TokenMissingError,
)
from ignition.records import CivitaiRef, ResolvedFile
from ignition.settings import Settings

_CIVITAI_KEY_HINT = (
    "create an API key at https://civitai.com/user/account (API Keys) and set CIVITAI_TOKEN"
)


async def resolve_civitai(client: HttpClient, settings: Settings, ref: CivitaiRef) -> ResolvedFile:
    """Steps: newest version of a model id → the version's JSON → pick the file (fileId, else
    primary) → its folder (override, file type, model type) → download URL, sha256, size."""
    endpoint = settings.civitai_endpoint
    try:
        version_id = ref.version_id
        if version_id is None:
            model = await client.get_json(f"{endpoint}/api/v1/models/{ref.model_id}")
            versions = _dict(model).get("modelVersions") or []
            if not versions:
                raise ModelNotFoundError(f"CivitAI model {ref.model_id} has no versions")
            version_id = int(versions[0]["id"])
        version = _dict(await client.get_json(f"{endpoint}/api/v1/model-versions/{version_id}"))
    except HttpError as error:
        raise explain_civitai_error(error, ref, settings) from None

    name = f"civitai:{version_id}"
    warnings = _early_access(version, ref, settings)
    files = [f for f in version.get("files") or [] if isinstance(f, dict)]
    if not files:
        raise ModelNotFoundError(
            f"{name} ({ref.text}) has no files: the model was archived or removed",
            hint="pick another version on the model's page",
        )
    chosen = _pick_file(files, ref.file_id, name)
    filename = sanitise_filename(
        ref.filename or str(chosen.get("name") or f"{version_id}.safetensors")
    )
    model_type = str(_dict(version.get("model")).get("type") or "Other")
    if ref.folder is not None:
        folder = normalise_folder(ref.folder)
    else:
        folder = civitai_folder(model_type, str(chosen.get("type") or ""), filename)
    sha256 = _dict(chosen.get("hashes")).get("SHA256")
    size_kb = chosen.get("sizeKB")
    return ResolvedFile(
        ref=ref,
        source="civitai",
        name=name,
        url=f"{endpoint}/api/download/models/{version_id}?fileId={chosen['id']}",
        filename=filename,
        folder=folder,
        expected_sha256=str(sha256).lower() if sha256 else None,
        # sizeKB is a rounded float: good for the disk check, never for verification.
        expected_size=None,
        size_estimate=int(float(size_kb) * 1024) if isinstance(size_kb, int | float) else None,
        warnings=tuple(warnings),
    )


async def find_by_sha256(
    client: HttpClient, settings: Settings, sha256: str
) -> tuple[int, int] | None:
    """(version id, file id) of the CivitAI file with these bytes, or None when CivitAI knows
    none (GET /api/v1/model-versions/by-hash/{sha256}): how a file copied in by hand is traced."""
    url = f"{settings.civitai_endpoint}/api/v1/model-versions/by-hash/{sha256}"
    try:
        version = _dict(await client.get_json(url))
    except HttpError as error:
        if error.status == 404:
            return None
        raise
    for candidate in version.get("files") or []:
        hashes = _dict(_dict(candidate).get("hashes"))
        if str(hashes.get("SHA256", "")).lower() == sha256:
            return int(version["id"]), int(candidate["id"])
    return None


def _early_access(version: dict[str, Any], ref: CivitaiRef, settings: Settings) -> list[str]:
    """An early-access version downloads only for an account that bought it: without a token
    that is certain to fail, so it fails here (a dry run must not call it "planned"); with one,
    CivitAI alone knows, so the plan carries a warning."""
    if str(version.get("availability") or "") != "EarlyAccess":
        return []
    deadline = version.get("earlyAccessEndsAt")
    until = f" until {deadline}" if deadline else ""
    if settings.civitai_token is None:
        raise EarlyAccessError(
            f"CivitAI {ref.text!r} is in early access{until}",
            hint="set CIVITAI_TOKEN to the key of an account that bought early access, "
            "or wait until it ends",
        )
    return [f"in early access{until}: downloads only if CIVITAI_TOKEN's account bought it"]


def _pick_file(files: list[dict[str, Any]], file_id: int | None, name: str) -> dict[str, Any]:
    if file_id is not None:
        for candidate in files:
            if candidate.get("id") == file_id:
                return candidate
        listed = ", ".join(f"{f.get('id')} ({f.get('name')})" for f in files)
        raise ModelNotFoundError(f"{name} has no file {file_id}; its files: {listed}")
    for candidate in files:
        if candidate.get("primary"):
            return candidate
    return files[0]


def _dict(value: object) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def explain_civitai_error(error: HttpError, ref: CivitaiRef, settings: Settings) -> IgnitionError:
    """A CivitAI answer (API or download) → the error named after the user's situation."""
    what = f"CivitAI {ref.text!r}"
    body = _json_body(error.body)
    message = str(body.get("message") or body.get("error") or "").strip()
    if error.status == 401:
        if settings.civitai_token is not None:
            return TokenMissingError(
                f"{what}: CivitAI did not accept CIVITAI_TOKEN ({message or 'unauthorized'})",
                hint="the key may be revoked or mistyped; " + _CIVITAI_KEY_HINT,
            )
        return TokenMissingError(
            f"{what}: the creator requires you to be logged in to download it",
            hint=_CIVITAI_KEY_HINT,
        )
    if error.status == 403 and "early access" in str(body.get("error", "")).lower():
        deadline = body.get("deadline")
        return EarlyAccessError(
            f"{what} is in early access" + (f" until {deadline}" if deadline else ""),
            hint="buy early access on CivitAI with the account of CIVITAI_TOKEN, "
            "or wait until the deadline",
        )
    if error.status == 403:
        return TokenMissingError(
            f"{what}: CivitAI refused the download ({message or 'forbidden'})",
            hint=_CIVITAI_KEY_HINT,
        )
    if error.status in (400, 404):
        return ModelNotFoundError(
            f"{what}: no such model version on CivitAI",
            hint="use the number after modelVersionId= in the model page's URL",
        )
    if error.status == 410:
        return ModelNotFoundError(
            f"{what} was removed from CivitAI (410 Gone)", hint="pick another model or version"
        )
    if error.status == 429:
        return RateLimitedError(f"{what}: CivitAI kept answering 429 (too many requests)")
    return ResolveError(
        f"{what}: CivitAI answered HTTP {error.status} ({message or 'no details'})",
        hint="CivitAI may be down; run again later",
    )


def _json_body(text: str) -> dict[str, Any]:
    try:
        value = bounded_json.loads(text, what="CivitAI's error answer")
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}
