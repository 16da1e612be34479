"""Parse COMFYUI_NODES / `--nodes` into NodeRefs, collecting every bad entry instead of stopping.

An entry is one of (separated by commas, spaces or newlines, like the model lists):

    comfyui-impact-pack              a Comfy Registry id: its latest active version
    comfyui-impact-pack@8.8.1        a registry id at a version (a leading `v` is dropped)
    https://github.com/o/r[@ref]     a git URL at a tag, branch or commit (default branch if none)
    o/r[@ref]                        a GitHub repo (on GITHUB_ENDPOINT)

Everything that later becomes a git argument or a folder name is checked here, so an entry can
never smuggle an option (`--upload-pack=…`) or a path (`../x`) into the later stages.
"""

from __future__ import annotations

import re
from typing import NamedTuple

from ignition.errors import DuplicateEntryError, SpecError
from ignition.node_names import COMMIT, REGISTRY_ID, REPO_PART, SEMVER, clone_folder
from ignition.records import NodeRef
from ignition.spec.entries import split_entries

# A git ref: never starting with `-` (an option to git) and without `..` or control characters.
_GIT_REF = re.compile(r"^(?!-)(?!.*\.\.)[A-Za-z0-9._/+-]{1,200}$")
_GITHUB_SHORT = re.compile(r"^([A-Za-z0-9_.-]+)/([A-Za-z0-9_.-]+?)(?:\.git)?(?:@(.+))?$")

NODES_ORIGIN = "COMFYUI_NODES"


class ParsedNodes(NamedTuple):
    refs: list[NodeRef]
    errors: list[SpecError]  # every bad entry, in input order, with `.entry` set


def parse_node_specs(text: str, *, github_endpoint: str) -> ParsedNodes:
    """Every entry of a COMFYUI_NODES-style list: refs for the good ones, errors for the rest."""
    refs: list[NodeRef] = []
    errors: list[SpecError] = []
    seen: dict[tuple[str, str], str] = {}
    for entry in split_entries(text):
        try:
            if not entry:
                raise SpecError(
                    "COMFYUI_NODES has an empty entry (two commas in a row)",
                    hint="remove the extra comma or add the missing pack",
                )
            ref = parse_node_entry(entry, github_endpoint=github_endpoint)
            first = seen.get(ref.key)
            if first is not None:
                raise DuplicateEntryError(f"{entry!r} names the same pack as {first!r}")
        except SpecError as error:
            error.entry = entry
            errors.append(error)
            continue
        seen[ref.key] = entry
        refs.append(ref)
    return ParsedNodes(refs, errors)


def parse_node_entry(entry: str, *, github_endpoint: str, origin: str = NODES_ORIGIN) -> NodeRef:
    """One entry → a NodeRef; SpecError says what is wrong with it."""
    if entry.startswith(("https://", "http://")):
        url, ref = _split_url_ref(entry)
        repo_name(url)  # checked now: the folder name comes from it
        return NodeRef(entry, "git", url, _git_ref(entry, ref), origin=origin)
    short = _GITHUB_SHORT.match(entry)
    if short is not None:
        owner, repo, ref = short.groups()
        if not (REPO_PART.match(owner) and REPO_PART.match(repo)):
            raise SpecError(f"{entry!r} is not a GitHub owner/repo", hint=_FORMS)
        url = f"{github_endpoint.rstrip('/')}/{owner}/{repo}"
        return NodeRef(entry, "git", url, _git_ref(entry, ref), origin=origin)
    pack_id, _, version = entry.partition("@")
    if not REGISTRY_ID.match(pack_id):
        raise SpecError(f"{entry!r} is not a registry id, a git URL or owner/repo", hint=_FORMS)
    version_ = registry_version(entry, version)
    return NodeRef(entry, "registry", pack_id.lower(), version_, origin=origin)


def registry_version(entry: str, version: str) -> str | None:
    """A registry version as the registry accepts it: X.Y.Z, a commit, or None for the latest."""
    version = version.strip()
    if version in ("", "latest", "unknown", "nightly"):
        return None
    bare = version[1:] if version[:1] in ("v", "V") else version
    if SEMVER.match(bare):
        return bare
    if COMMIT.match(version.lower()):
        return version.lower()
    raise SpecError(
        f"{entry!r}: version {version!r} is neither X.Y.Z nor a git commit",
        hint="write id@X.Y.Z (the registry's versions), or leave the version off for the latest",
    )


def repo_name(url: str) -> str:
    """The folder a clone of `url` gets (its last path part, without `.git`), checked safe."""
    name = clone_folder(url)
    if name is None:
        raise SpecError(f"{url!r} is not a git repository URL", hint=_FORMS)
    return name


def _split_url_ref(entry: str) -> tuple[str, str | None]:
    """`https://host/o/r@v1` → (`https://host/o/r`, `v1`); an `@` in the host part is userinfo."""
    scheme_end = entry.index("://") + 3
    path_start = entry.find("/", scheme_end)
    if path_start < 0:
        return entry, None
    at = entry.rfind("@", path_start)
    if at < 0:
        return entry, None
    return entry[:at], entry[at + 1 :]


def _git_ref(entry: str, ref: str | None) -> str | None:
    if ref is None or ref == "":
        return None
    if not _GIT_REF.match(ref):
        raise SpecError(
            f"{entry!r}: {ref!r} is not a git tag, branch or commit",
            hint="write URL@tag, URL@branch or URL@commit",
        )
    return ref


_FORMS = (
    "name a pack as a registry id (comfyui-impact-pack[@8.8.1]), a git URL "
    "(https://github.com/owner/repo[@ref]) or owner/repo[@ref]"
)
