"""Resolve a git node pack to one commit: `git ls-remote` of the repo, then the ref's sha.

A tag wins over a branch of the same name (an annotated tag is peeled to its commit); no ref
means the remote's HEAD. A full 40-character commit is taken as given (the fetch checks it
exists); a shorter hex prefix must be the tip of a branch or tag, because servers (GitHub
included) fetch by full sha only.
"""

from __future__ import annotations

from ignition._http import redact_url
from ignition.errors import PackNotFoundError, ResolveError
from ignition.gitcli import GitFailed, run_git
from ignition.node_names import COMMIT, clone_folder
from ignition.records import NodeRef, ResolvedPack
from ignition.settings import Settings

_FULL_SHA = 40


async def resolve_git(
    settings: Settings,
    ref: NodeRef,
    *,
    url: str | None = None,
    commit_or_ref: str | None = None,
    cnr_id: str | None = None,
) -> ResolvedPack:
    """`ref` (a git ref, or a registry nightly given its repo `url`) → the commit to check out.

    `url` and `commit_or_ref` override the ref's own (a registry pack's repository and commit);
    `cnr_id` makes the folder the registry id, as ComfyUI-Manager lays out nightly installs.
    """
    clone_url = url or ref.name
    wanted = commit_or_ref if url is not None else ref.version
    commit = await _commit_for(settings, ref, clone_url, wanted)
    folder = cnr_id or clone_folder(clone_url)
    if folder is None:  # a registry's `repository` is the publisher's text
        raise ResolveError(
            f"{ref.text}: {redact_url(clone_url)} is not a git repository URL",
            hint="name the pack by its git URL or owner/repo instead",
        )
    return ResolvedPack(
        ref=ref,
        source="git",
        pack_id=cnr_id or _owner_repo(clone_url),
        folder=folder,
        version=wanted if wanted and not COMMIT.match(wanted) else None,
        commit=commit,
        url=clone_url,
        cnr_id=cnr_id,
    )


async def _commit_for(settings: Settings, ref: NodeRef, url: str, wanted: str | None) -> str:
    if wanted is not None and len(wanted) == _FULL_SHA and COMMIT.match(wanted):
        return wanted
    try:
        listing = await run_git(settings, url, "ls-remote", "--", url)
    except GitFailed as error:
        raise _unreachable(ref, url, error) from None
    tips = _parse_listing(listing)
    if wanted is None:
        head = tips.get("HEAD")
        if head is None:
            raise PackNotFoundError(f"{ref.text}: {url} has no default branch (empty repository?)")
        return head
    for name in (f"refs/tags/{wanted}^{{}}", f"refs/tags/{wanted}", f"refs/heads/{wanted}"):
        if name in tips:
            return tips[name]
    if COMMIT.match(wanted):
        matches = {sha for sha in tips.values() if sha.startswith(wanted)}
        if len(matches) == 1:
            return matches.pop()
    tags = sorted(n.removeprefix("refs/tags/") for n in tips if n.startswith("refs/tags/"))
    known = ", ".join(t for t in tags if not t.endswith("^{}"))[-200:] or "none"
    raise PackNotFoundError(
        f"{ref.text}: {url} has no tag, branch or commit {wanted!r} (tags: {known})",
        hint="name an existing tag or branch, or the full 40-character commit",
    )


def _parse_listing(listing: str) -> dict[str, str]:
    tips: dict[str, str] = {}
    for line in listing.splitlines():
        sha, _, name = line.partition("\t")
        if len(sha) == _FULL_SHA and name:
            tips[name.strip()] = sha
    return tips


def _unreachable(ref: NodeRef, url: str, error: GitFailed) -> ResolveError:
    lowered = error.stderr.lower()
    if "not found" in lowered or "authentication" in lowered or "403" in lowered:
        return PackNotFoundError(
            f"{ref.text}: repository {url} not found or private ({error.first_line})",
            hint="check the URL; a private GitHub repo needs GITHUB_TOKEN",
        )
    return ResolveError(
        f"{ref.text}: cannot reach {url} ({error.first_line})",
        hint="check the network and GITHUB_ENDPOINT; run again",
    )


def _owner_repo(url: str) -> str:
    parts = url.rstrip("/").removesuffix(".git").rsplit("/", 2)
    return "/".join(parts[-2:])
