"""A fake Hugging Face Hub: resolve (HEAD/GET), the tree API, gating and X-Error-Code errors."""

import hashlib
from dataclasses import dataclass, field

from aiohttp import web

from fakes.server import Counters, ServerThread, Throttle
from fakes.storage import Blob, BytesBlob, FakeStorage

_COMMIT = "0123456789abcdef0123456789abcdef01234567"


@dataclass
class HfRepo:
    files: dict[str, bytes | Blob]  # a Blob: large generated files for benchmarks
    gated: bool = False
    revisions: tuple[str, ...] = ("main",)
    # Paths served as small regular (non-LFS) files: a 200 with a git-sha1 ETag, no sha256.
    small: frozenset[str] = frozenset()
    # Paths whose published sha256 does not match the bytes storage serves.
    corrupt: frozenset[str] = frozenset()
    # A renamed repo: resolve answers with a RELATIVE redirect to the new name, as HF does.
    moved_to: str | None = None


@dataclass
class FakeHuggingFace:
    storage: FakeStorage
    # Tokens whose account accepted every gated licence; any other token is "not authorized".
    granted_tokens: set[str] = field(default_factory=lambda: {"hf_granted_secret_token_42"})
    repos: dict[str, HfRepo] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    throttle: Throttle = field(default_factory=Throttle)
    page_size: int = 3

    def __post_init__(self) -> None:
        app = web.Application()
        app.router.add_get("/api/models/{owner}/{name}/tree/{rev}", self._tree)
        app.router.add_route("HEAD", "/{owner}/{name}/resolve/{rev}/{path:.+}", self._resolve)
        app.router.add_route("GET", "/{owner}/{name}/resolve/{rev}/{path:.+}", self._resolve)
        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return self.server.url

    def add(self, repo: str, files: dict[str, bytes | Blob], **options: object) -> HfRepo:
        entry = HfRepo(files, **options)  # type: ignore[arg-type]
        self.repos[repo] = entry
        return entry

    def _error(self, status: int, code: str, message: str) -> web.Response:
        headers = {"X-Error-Code": code, "X-Error-Message": message}
        if code == "EntryNotFound":
            headers["X-Repo-Commit"] = _COMMIT
        return web.json_response({"error": message}, status=status, headers=headers)

    def _lookup(self, request: web.Request) -> tuple[str, HfRepo] | web.Response:
        repo_id = f"{request.match_info['owner']}/{request.match_info['name']}"
        repo = self.repos.get(repo_id)
        if repo is None:
            return self._error(401, "RepoNotFound", "Repository not found")
        # Every revision's files are also served at the commit it points to (X-Repo-Commit).
        if request.match_info["rev"] not in (*repo.revisions, _COMMIT):
            return self._error(404, "RevisionNotFound", "Invalid rev id")
        return repo_id, repo

    async def _resolve(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        throttled = self.throttle.check(request)
        if throttled is not None:
            return throttled
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        repo_id, repo = found
        if repo.moved_to is not None:
            rest = request.path.split("/resolve/", 1)[1]
            raise web.HTTPTemporaryRedirect(f"/{repo.moved_to}/resolve/{rest}")
        if repo.gated:
            auth = request.headers.get("Authorization", "")
            if not auth:
                return self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted.")
            if auth.removeprefix("Bearer ") not in self.granted_tokens:
                return self._error(
                    403,
                    "GatedRepo",
                    f"Access to model {repo_id} is restricted and you are "
                    "not in the authorized list.",
                )
        path = request.match_info["path"]
        data = repo.files.get(path)
        if data is None:
            return self._error(404, "EntryNotFound", f"{path} does not exist")
        if path in repo.small:
            assert isinstance(data, bytes)
            etag = hashlib.sha1(data).hexdigest()  # noqa: S324 - git's blob id, as HF sends
            return web.Response(
                body=data,
                headers={"ETag": f'"{etag}"', "X-Repo-Commit": _COMMIT},
                content_type="application/octet-stream",
            )
        blob = _as_blob(data)
        published = blob.sha256()
        served: bytes | Blob = blob
        if path in repo.corrupt:
            assert isinstance(data, bytes)
            served = data[:-1] + bytes([data[-1] ^ 1])
        location = self.storage.put(f"hf-{published}-{len(self.storage.blobs)}", served)
        return web.Response(
            status=302,
            headers={
                "Location": location,
                "X-Linked-Etag": f'"{published}"',
                "X-Linked-Size": str(blob.size),
                "X-Repo-Commit": _COMMIT,
                "ETag": f'"{published}"',
            },
        )

    async def _tree(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        found = self._lookup(request)
        if isinstance(found, web.Response):
            return found
        _, repo = found
        entries: list[dict[str, object]] = []
        directories = sorted({p.rsplit("/", 1)[0] for p in repo.files if "/" in p})
        entries += [
            {"type": "directory", "oid": "0" * 40, "size": 0, "path": d} for d in directories
        ]
        for path, data in sorted(repo.files.items()):
            blob = _as_blob(data)
            entry: dict[str, object] = {
                "type": "file",
                "oid": "1" * 40,
                "size": blob.size,
                "path": path,
            }
            if path not in repo.small:
                entry["lfs"] = {"oid": blob.sha256(), "size": blob.size, "pointerSize": 134}
            entries.append(entry)
        start = int(request.query.get("cursor", "0"))
        page = entries[start : start + self.page_size]
        headers = {}
        if start + self.page_size < len(entries):
            nxt = request.url.update_query(cursor=str(start + self.page_size))
            headers["Link"] = f'<{nxt}>; rel="next"'
        return web.json_response(page, headers=headers)


def _as_blob(data: bytes | Blob) -> Blob:
    return BytesBlob(data) if isinstance(data, bytes) else data
