"""A fake CivitAI: the v1 API and /api/download with PROTOCOLS.md's behaviour, failures included."""

import re
from dataclasses import dataclass, field

from aiohttp import web

from fakes.content import model_bytes, sha256
from fakes.server import Counters, ServerThread, Throttle
from fakes.storage import FakeStorage

_BROWSER = re.compile(r"mozilla|chrome|safari|firefox|opera|edge", re.IGNORECASE)


@dataclass
class CivitaiFile:
    file_id: int
    name: str
    data: bytes
    type: str = "Model"
    primary: bool = True
    # The hash the API publishes; differs from sha256(data) for "wrong bytes" tests.
    published_sha256: str | None = None

    def __post_init__(self) -> None:
        if self.published_sha256 is None:
            self.published_sha256 = sha256(self.data)


@dataclass
class CivitaiVersion:
    version_id: int
    model_id: int
    files: list[CivitaiFile]
    model_type: str = "Checkpoint"
    login_required: bool = False
    early_access_deadline: str | None = None
    gone: bool = False  # 410 on download
    archived: bool = False  # files: [] in the API
    echo_headers: bool = False  # 403 on download, its message repeating the request's headers


@dataclass
class FakeCivitai:
    storage: FakeStorage
    token: str = "civitai-secret-token-0123456789"
    versions: dict[int, CivitaiVersion] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    throttle: Throttle = field(default_factory=Throttle)

    def __post_init__(self) -> None:
        app = web.Application()
        app.router.add_get("/api/v1/model-versions/{id}", self._version)
        app.router.add_get("/api/v1/model-versions/by-hash/{hash}", self._by_hash)
        app.router.add_get("/api/v1/models/{id}", self._model)
        app.router.add_get("/api/download/models/{id}", self._download)
        app.router.add_get("/login", self._login)
        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return self.server.url

    def add(
        self,
        version_id: int,
        *,
        model_id: int | None = None,
        model_type: str = "Checkpoint",
        files: list[CivitaiFile] | None = None,
        **flags: object,
    ) -> CivitaiVersion:
        if files is None:
            data = model_bytes(f"civitai-{version_id}")
            files = [CivitaiFile(version_id * 10, f"model_{version_id}.safetensors", data)]
        version = CivitaiVersion(
            version_id,
            model_id or version_id + 100000,
            files,
            model_type,
            **flags,  # type: ignore[arg-type]
        )
        self.versions[version_id] = version
        for item in files:
            self.storage.put(f"cv-{item.file_id}", item.data)
        return version

    def _payload(self, version: CivitaiVersion) -> dict[str, object]:
        files = [] if version.archived else version.files
        return {
            "id": version.version_id,
            "modelId": version.model_id,
            "name": f"v{version.version_id}",
            "status": "Published",
            "availability": "EarlyAccess" if version.early_access_deadline else "Public",
            "earlyAccessEndsAt": version.early_access_deadline,
            "model": {"name": f"Model {version.model_id}", "type": version.model_type},
            "files": [
                {
                    "id": f.file_id,
                    "name": f.name,
                    "type": f.type,
                    "sizeKB": len(f.data) / 1024,
                    "primary": f.primary,
                    "metadata": {"format": "SafeTensor", "fp": "fp16", "size": "pruned"},
                    "hashes": {"SHA256": (f.published_sha256 or "").upper(), "CRC32": "0"},
                    "downloadUrl": f"{self.url}/api/download/models/{version.version_id}",
                }
                for f in files
            ],
        }

    async def _version(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        raw = request.match_info["id"]
        if not raw.isdigit():
            return web.json_response({"error": "Invalid id"}, status=400)
        version = self.versions.get(int(raw))
        if version is None:
            return web.json_response({"error": "Model not found"}, status=404)
        return web.json_response(self._payload(version))

    async def _by_hash(self, request: web.Request) -> web.Response:
        """The version holding a file with this sha256 (CivitAI matches any case)."""
        self.counters.count(request)
        wanted = request.match_info["hash"].lower()
        for version in self.versions.values():
            if any((f.published_sha256 or "").lower() == wanted for f in version.files):
                return web.json_response(self._payload(version))
        return web.json_response({"error": "Model not found"}, status=404)

    async def _model(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        model_id = int(request.match_info["id"])
        versions = sorted(
            (v for v in self.versions.values() if v.model_id == model_id),
            key=lambda v: -v.version_id,
        )
        if not versions:
            return web.json_response({"error": "Model not found"}, status=404)
        return web.json_response(
            {
                "id": model_id,
                "name": f"Model {model_id}",
                "type": versions[0].model_type,
                "modelVersions": [self._payload(v) for v in versions],
            }
        )

    async def _download(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        throttled = self.throttle.check(request)
        if throttled is not None:
            return throttled
        version = self.versions.get(int(request.match_info["id"]))
        if version is None:
            return web.json_response({"error": "Model not found"}, status=404)
        if version.gone:
            return web.json_response({"error": "Gone"}, status=410)
        if version.echo_headers:  # a debugging proxy or a hostile server
            echoed = "; ".join(f"{name}: {value}" for name, value in request.headers.items())
            return web.json_response({"error": "Forbidden", "message": echoed}, status=403)
        authorized = request.headers.get("Authorization") == f"Bearer {self.token}"
        if version.early_access_deadline and not authorized:
            return web.json_response(
                {"error": "Early Access", "deadline": version.early_access_deadline}, status=403
            )
        if version.login_required and not authorized:
            if _BROWSER.search(request.headers.get("User-Agent", "")):
                raise web.HTTPTemporaryRedirect(f"/login?returnUrl={request.path}")
            return web.json_response(
                {
                    "error": "Unauthorized",
                    "message": "The creator of this asset requires you to be logged in "
                    "to download it",
                },
                status=401,
            )
        wanted = request.query.get("fileId")
        chosen = next(
            (
                f
                for f in version.files
                if (wanted is None and f.primary) or str(f.file_id) == wanted
            ),
            None,
        )
        if chosen is None:
            return web.json_response({"error": "File not found"}, status=404)
        location = self.storage.put(f"cv-{chosen.file_id}", chosen.data)
        raise web.HTTPTemporaryRedirect(location)

    async def _login(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        return web.Response(
            text="<!DOCTYPE html><html><head><title>Sign in</title></head>"
            "<body>Log in</body></html>",
            content_type="text/html",
        )


def _wanted(item: CivitaiFile, file_id: str | None) -> bool:
    return item.primary if file_id is None else str(item.file_id) == file_id
