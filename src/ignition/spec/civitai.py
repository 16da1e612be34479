"""CivitAI entries: a model-version id, or a URL pasted from civitai.com."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

from ignition.errors import SpecError
from ignition.records import CivitaiRef

_URL_HINT = (
    "use a model-version id (the number after modelVersionId= in the model page's URL) "
    "or paste the civitai.com URL"
)


def parse_civitai_entry(entry: str, folder: str | None) -> CivitaiRef:
    """One entry → ref. Accepted forms:

    `128713`, `https://civitai.com/models/4384?modelVersionId=128713`,
    `https://civitai.com/models/4384[/slug]` (newest version),
    `https://civitai.com/api/download/models/128713[?fileId=…]`,
    `https://civitai.com/api/v1/model-versions/128713`.
    """
    if entry.isdigit():
        return CivitaiRef(text=entry, version_id=int(entry), folder=folder)
    if "/" not in entry:
        raise SpecError(f"CivitAI entry {entry!r} is not a model-version id", hint=_URL_HINT)
    url = entry if "://" in entry else f"https://{entry}"
    parts = urlsplit(url)
    segments = [s for s in parts.path.split("/") if s]
    query = parse_qs(parts.query)

    def number(value: str | None, what: str) -> int:
        if value is None or not value.isdigit():
            raise SpecError(f"CivitAI URL {entry!r} has no numeric {what}", hint=_URL_HINT)
        return int(value)

    def first(key: str) -> str | None:
        values = query.get(key)
        return values[0] if values else None

    file_id = number(first("fileId"), "fileId") if "fileId" in query else None
    if segments[:3] == ["api", "download", "models"] and len(segments) == 4:
        version = number(segments[3], "version id")
        return CivitaiRef(text=entry, version_id=version, file_id=file_id, folder=folder)
    if segments[:3] == ["api", "v1", "model-versions"] and len(segments) == 4:
        return CivitaiRef(text=entry, version_id=number(segments[3], "version id"), folder=folder)
    if segments[:1] == ["models"] and len(segments) >= 2:
        model_id = number(segments[1], "model id")
        if "modelVersionId" in query:
            version = number(first("modelVersionId"), "modelVersionId")
            return CivitaiRef(text=entry, version_id=version, model_id=model_id, folder=folder)
        return CivitaiRef(text=entry, version_id=None, model_id=model_id, folder=folder)
    raise SpecError(f"CivitAI URL {entry!r} is not a model or download link", hint=_URL_HINT)
