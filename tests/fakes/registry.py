"""A fake Comfy Registry (api.comfy.org) on loopback, as PROTOCOLS.md (Custom nodes §1) describes.

`GET /nodes/{id}/install[?version=X]` answers one NodeVersion whose `downloadUrl` is a presigned
link on the fake storage host (127.0.0.2), like cdn.comfy.org. `?version` must be X.Y.Z (400
otherwise); without it the newest version is answered. `/nodes/{id}/versions/{v}` gives a
version's status, `/nodes/{id}` the Node (its `repository`), `/comfy-nodes/{class}/node` the
pack that provides a class, `/nodes/search?search=` similar ids. `omit_status` leaves `status`
out of /install answers, so the client must ask /versions/{v} itself.
"""

from __future__ import annotations

import io
import re
import zipfile
from dataclasses import dataclass, field

from aiohttp import web

from fakes.server import Counters, ServerThread
from fakes.storage import FakeStorage

_SEMVER = re.compile(r"^\d+\.\d+\.\d+$")


def zip_files(files: dict[str, bytes | str]) -> bytes:
    """A registry-style node.zip: repo-relative names at the zip root, no top-level folder."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, content in files.items():
            bundle.writestr(name, content)
    return buffer.getvalue()


def node_pack_files(class_name: str, *, requirements: str = "", marker: str = "") -> dict:
    """The files of a minimal real custom node pack providing `class_name`."""
    files: dict[str, bytes | str] = {
        "__init__.py": (
            f"class {class_name}:\n"
            "    CATEGORY = 'test'\n"
            "    RETURN_TYPES = ()\n"
            "    FUNCTION = 'run'\n"
            "    @classmethod\n"
            "    def INPUT_TYPES(cls):\n"
            "        return {'required': {}}\n"
            f"NODE_CLASS_MAPPINGS = {{'{class_name}': {class_name}}}\n"
            f"MARKER = {marker!r}\n"
        ),
        "pyproject.toml": f'[project]\nname = "{class_name.lower()}"\nversion = "1.0.0"\n',
    }
    if requirements:
        files["requirements.txt"] = requirements
    return files


@dataclass
class RegistryVersion:
    version: str
    archive: bytes
    status: str = "NodeVersionStatusActive"
    status_reason: str = ""


@dataclass
class RegistryPack:
    pack_id: str
    versions: list[RegistryVersion] = field(default_factory=list)  # oldest first
    repository: str = ""
    classes: tuple[str, ...] = ()


@dataclass
class FakeRegistry:
    storage: FakeStorage
    packs: dict[str, RegistryPack] = field(default_factory=dict)
    counters: Counters = field(default_factory=Counters)
    omit_status: bool = False

    def __post_init__(self) -> None:
        app = web.Application()
        app.router.add_get("/nodes/search", self._search)
        app.router.add_get("/nodes/{id}/install", self._install)
        app.router.add_get("/nodes/{id}/versions/{version}", self._version)
        app.router.add_get("/nodes/{id}", self._node)
        app.router.add_get("/comfy-nodes/{name}/node", self._class_node)
        self.server = ServerThread(app)

    @property
    def url(self) -> str:
        return self.server.url

    def publish(
        self,
        pack_id: str,
        version: str,
        files: dict,
        *,
        status: str = "NodeVersionStatusActive",
        reason: str = "",
        classes: tuple[str, ...] = (),
        repository: str = "",
    ) -> RegistryVersion:
        pack = self.packs.setdefault(pack_id, RegistryPack(pack_id))
        pack.classes = tuple(dict.fromkeys((*pack.classes, *classes)))
        pack.repository = repository or pack.repository
        entry = RegistryVersion(version, zip_files(files), status, reason)
        pack.versions.append(entry)
        return entry

    @property
    def total_requests(self) -> int:
        return sum(self.counters.requests.values()) + sum(self.storage.counters.requests.values())

    def _pack(self, request: web.Request) -> RegistryPack:
        pack = self.packs.get(request.match_info["id"])
        if pack is None:
            raise web.HTTPNotFound(
                text='{"error":"Not Found","message":"Node not found"}',
                content_type="application/json",
            )
        return pack

    def _node_json(self, pack: RegistryPack) -> dict:
        latest = pack.versions[-1] if pack.versions else None
        return {
            "id": pack.pack_id,
            "name": pack.pack_id,
            "description": "",
            "repository": pack.repository,
            "latest_version": {"version": latest.version} if latest else None,
        }

    def _version_json(self, pack: RegistryPack, entry: RegistryVersion) -> dict:
        answer = {
            "id": f"{pack.pack_id}-{entry.version}",
            "node_id": pack.pack_id,
            "version": entry.version,
            "changelog": "",
            "dependencies": [],
            "deprecated": False,
            "downloadUrl": self.storage.put(f"{pack.pack_id}-{entry.version}.zip", entry.archive),
            "status": entry.status,
            "status_reason": entry.status_reason,
        }
        if self.omit_status:
            del answer["status"], answer["status_reason"]
        return answer

    async def _install(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        pack = self._pack(request)
        wanted = request.query.get("version")
        if wanted is not None and not _SEMVER.match(wanted):
            return web.json_response(
                {"error": "Bad Request", "message": "bad version format"}, status=400
            )
        entries = [v for v in pack.versions if wanted is None or v.version == wanted]
        if wanted is None:  # the latest is the newest active one
            entries = [v for v in entries if v.status == "NodeVersionStatusActive"] or entries
        if not entries:
            raise web.HTTPNotFound(text="version not found")
        return web.json_response(self._version_json(pack, entries[-1]))

    async def _version(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        pack = self._pack(request)
        for entry in pack.versions:
            if entry.version == request.match_info["version"]:
                answer = self._version_json(pack, entry)
                answer["status"], answer["status_reason"] = entry.status, entry.status_reason
                return web.json_response(answer)
        raise web.HTTPNotFound(text="version not found")

    async def _node(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        return web.json_response(self._node_json(self._pack(request)))

    async def _class_node(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        name = request.match_info["name"]
        for pack in self.packs.values():
            if name in pack.classes:
                return web.json_response(self._node_json(pack))
        raise web.HTTPNotFound(text="no node")

    async def _search(self, request: web.Request) -> web.Response:
        self.counters.count(request)
        term = request.query.get("search", "").lower()
        found = [p for p in self.packs.values() if term[:4] in p.pack_id or p.pack_id in term]
        nodes = [self._node_json(p) for p in found]
        return web.json_response(
            {"total": len(nodes), "nodes": nodes, "page": 1, "limit": 10, "totalPages": 1}
        )
