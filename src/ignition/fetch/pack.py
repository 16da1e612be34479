"""Fetch a resolved node pack into staging: a registry archive over HTTP, a git commit with git.

Archives go through the HttpClient (the registry's `downloadUrl` redirects to a storage host;
the client scopes tokens per host, and the registry gets none). Their sha256 is computed as the
bytes arrive and checked when a lock already knows it. Git packs are fetched at exactly their
commit with a shallow fetch by sha, as GitHub allows; a server that refuses that gets a full
fetch. The clone's `origin` is the plain URL, as a ComfyUI-Manager clone would have it.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ignition._http import HttpClient, raise_for_status, redact_url
from ignition.errors import ChangedSinceLockedError, FetchError, PackNotFoundError
from ignition.gitcli import GitFailed, run_git
from ignition.records import ResolvedPack
from ignition.settings import Settings

# No node pack is this big; a server streaming forever is cut off here.
MAX_ARCHIVE_BYTES = 2 << 30
_CHUNK = 1 << 16


async def fetch_archive(client: HttpClient, pack: ResolvedPack, target: Path) -> str:
    """Stream `pack.url` into `target`; returns the sha256 (checked against a known one)."""
    digest = hashlib.sha256()
    size = 0
    async with client.get(pack.url) as response:
        await raise_for_status(response)
        with target.open("wb") as out:
            async for chunk in response.content.iter_chunked(_CHUNK):
                size += len(chunk)
                if size > MAX_ARCHIVE_BYTES:
                    raise FetchError(
                        f"{pack.folder}: the archive at {redact_url(pack.url)} is larger than "
                        f"{MAX_ARCHIVE_BYTES >> 30} GiB",
                        hint="this is not a node pack; check the registry entry",
                    )
                digest.update(chunk)
                out.write(chunk)
    sha256 = digest.hexdigest()
    if pack.archive_sha256 is not None and sha256 != pack.archive_sha256:
        raise ChangedSinceLockedError(
            f"{pack.folder}@{pack.version}: archive changed since locked: it hashes to "
            f"{sha256}, the lock says {pack.archive_sha256}",
            hint="the registry serves other bytes for this version than when it was locked; "
            "check the pack, then run `ignition lock` again",
        )
    return sha256


async def fetch_commit(settings: Settings, pack: ResolvedPack, target: Path) -> None:
    """A clone of `pack.url` at `pack.commit` in the (new) folder `target`, submodules too."""
    assert pack.commit is not None
    url = pack.url
    await run_git(settings, url, "init", "-q", "--", str(target))
    await run_git(settings, url, "remote", "add", "origin", "--", url, cwd=target)
    try:
        await run_git(
            settings, url, "fetch", "-q", "--depth", "1", "origin", pack.commit, cwd=target
        )
    except GitFailed:
        # Servers that refuse a sha in "want": the whole history, then the commit from it.
        try:
            await run_git(settings, url, "fetch", "-q", "origin", cwd=target)
        except GitFailed as error:
            raise FetchError(
                f"{pack.ref.text}: git fetch of {url} failed: {error.first_line}"
            ) from None
    try:
        await run_git(settings, url, "checkout", "-q", "--detach", pack.commit, cwd=target)
    except GitFailed as error:
        raise PackNotFoundError(
            f"{pack.ref.text}: commit {pack.commit} is not in {url} ({error.first_line})",
            hint="name a commit, tag or branch that exists in the repository",
        ) from None
    if (target / ".gitmodules").is_file():
        try:
            await run_git(
                settings,
                url,
                "submodule",
                "update",
                "-q",
                "--init",
                "--recursive",
                "--depth",
                "1",
                cwd=target,
            )
        except GitFailed as error:
            raise FetchError(f"{pack.ref.text}: submodules failed: {error.first_line}") from None
