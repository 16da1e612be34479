"""Resolve a Comfy Registry pack to one archive (PROTOCOLS.md, Custom nodes §1).

`GET /nodes/{id}/install[?version=X]` names the version and its `downloadUrl`. Only a version
whose status is `NodeVersionStatusActive` is ever fetched: the status is read from that answer,
or from `GET /nodes/{id}/versions/{v}` when the answer leaves it out, and anything else (banned,
flagged, deleted, pending) is refused with the registry's reason. A version that is a git commit
(a workflow saved from a nightly install) is the pack's repository at that commit.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import quote

from ignition._http import HttpClient, HttpError
from ignition.errors import PackNotFoundError, PackVersionRefusedError, ResolveError
from ignition.node_names import REGISTRY_ID, SEMVER
from ignition.records import NodeRef, ResolvedPack
from ignition.resolve.git import resolve_git
from ignition.settings import Settings

ACTIVE = "NodeVersionStatusActive"
_CLOSE_NAMES = 5


async def resolve_registry(client: HttpClient, settings: Settings, ref: NodeRef) -> ResolvedPack:
    """`ref` (kind "registry") → the archive of the requested (or latest) active version."""
    base = settings.comfy_registry_endpoint
    pack = quote(ref.name, safe="")
    if ref.version is not None and not SEMVER.match(ref.version):
        node = await _get(client, settings, f"{base}/nodes/{pack}", ref)
        repository = node.get("repository")
        if not isinstance(repository, str) or not repository.startswith(("https://", "http://")):
            raise PackNotFoundError(
                f"{ref.text}: the registry names no repository for {ref.name}, so commit "
                f"{ref.version} cannot be fetched",
                hint=f"name a registry version ({ref.name}@X.Y.Z) or the pack's git URL",
            )
        return await resolve_git(
            settings, ref, url=repository, commit_or_ref=ref.version, cnr_id=ref.name
        )
    query = f"?version={ref.version}" if ref.version else ""
    answer = await _get(client, settings, f"{base}/nodes/{pack}/install{query}", ref)
    version = answer.get("version")
    url = answer.get("downloadUrl")
    if not isinstance(version, str) or not isinstance(url, str) or not url:
        raise ResolveError(
            f"{ref.text}: the registry's answer has no version or download URL",
            hint="run again later; if it persists, install the pack from its git URL",
        )
    status, reason = answer.get("status"), answer.get("status_reason")
    if not isinstance(status, str):
        detail = await _get(client, settings, f"{base}/nodes/{pack}/versions/{quote(version)}", ref)
        status, reason = detail.get("status"), detail.get("status_reason")
    if status != ACTIVE:
        because = f": {reason}" if isinstance(reason, str) and reason else ""
        raise PackVersionRefusedError(
            f"{ref.name}@{version} is {_status_word(status)} in the registry{because}; "
            "Ignition does not install it"
        )
    return ResolvedPack(
        ref=ref,
        source="registry",
        pack_id=ref.name,
        folder=ref.name,
        version=version,
        commit=None,
        url=url,
    )


async def pack_for_class(client: HttpClient, settings: Settings, class_name: str) -> str | None:
    """The registry's best pack for a node class (`GET /comfy-nodes/{class}/node`), or None."""
    url = f"{settings.comfy_registry_endpoint}/comfy-nodes/{quote(class_name, safe='')}/node"
    try:
        node = await client.get_json(url)
    except HttpError as error:
        if error.status == 404:
            return None
        raise
    pack = node.get("id") if isinstance(node, dict) else None
    # The id becomes a folder name: only what the registry itself allows as an id.
    return pack if isinstance(pack, str) and REGISTRY_ID.match(pack) else None


async def close_names(client: HttpClient, settings: Settings, name: str) -> list[str]:
    """Registry ids that look like `name` (`/nodes/search`), for a "did you mean" hint."""
    url = f"{settings.comfy_registry_endpoint}/nodes/search?search={quote(name)}&limit=5"
    try:
        page = await client.get_json(url)
    except HttpError:
        return []
    nodes = page.get("nodes") if isinstance(page, dict) else None
    return [
        node["id"]
        for node in (nodes if isinstance(nodes, list) else [])[:_CLOSE_NAMES]
        if isinstance(node, dict) and isinstance(node.get("id"), str)
    ]


async def _get(client: HttpClient, settings: Settings, url: str, ref: NodeRef) -> dict[str, Any]:
    try:
        answer = await client.get_json(url)
    except HttpError as error:
        raise await _explain(client, settings, error, ref) from None
    if not isinstance(answer, dict):
        raise ResolveError(f"{ref.text}: the registry answered {url} with something else than JSON")
    return answer


async def _explain(
    client: HttpClient, settings: Settings, error: HttpError, ref: NodeRef
) -> ResolveError:
    if error.status == 404:
        similar = await close_names(client, settings, ref.name)
        hint = (
            f"did you mean {', '.join(similar)}?"
            if similar
            else "check the id on https://registry.comfy.org"
        )
        what = f"{ref.name}@{ref.version}" if ref.version else ref.name
        return PackNotFoundError(f"{ref.text}: {what} is not in the Comfy Registry", hint=hint)
    if error.status == 403:
        return PackVersionRefusedError(f"{ref.text}: the registry refuses {ref.name} (banned)")
    if error.status == 400:
        return ResolveError(
            f"{ref.text}: the registry rejects version {ref.version!r}",
            hint="registry versions are X.Y.Z",
        )
    return ResolveError(
        f"{ref.text}: the registry answered HTTP {error.status}",
        hint="run again later (COMFY_REGISTRY_ENDPOINT)",
    )


def _status_word(status: object) -> str:
    if not isinstance(status, str) or not status:
        return "of unknown status"
    return status.removeprefix("NodeVersionStatus").lower()
