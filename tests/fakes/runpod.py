"""A fake RunPod REST v2 templates API on 127.0.0.1, as strict as the real one.

It checks `Authorization: Bearer <key>`, validates every body against the OpenAPI schema shipped in
the package (answering 422 in the schema's ErrorResponse shape), refuses a second template with
the same name, and records every request. It runs in a ServerThread, so the code under test can
run in the test's thread or as a subprocess.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from fakes.server import ServerThread
from ignition.template.schema import CREATE_TEMPLATE, UPDATE_TEMPLATE, request_errors

PROBLEM_JSON = "application/problem+json"


@dataclass(frozen=True)
class Recorded:
    method: str
    path: str
    authorization: str | None
    body: Any


@dataclass(frozen=True)
class Scripted:
    """An answer given, after authentication, instead of handling the next request."""

    status: int
    detail: str
    headers: dict[str, str] = field(default_factory=dict)


def problem(status: int, title: str, detail: str, errors: list[str] | None = None) -> web.Response:
    body: dict[str, Any] = {"title": title, "status": status, "detail": detail}
    if errors:
        body["errors"] = errors
    return web.json_response(body, status=status, content_type=PROBLEM_JSON)


class FakeRunPod:
    def __init__(self, api_key: str) -> None:
        self.api_key = api_key
        self.templates: dict[str, dict[str, Any]] = {}
        self.requests: list[Recorded] = []
        self.scripted: list[Scripted] = []
        self._ids = (f"tpl_{n:04d}" for n in itertools.count(1))
        app = web.Application(middlewares=[self._record, self._authenticate, self._script])
        app.router.add_get("/v2/templates", self._list)
        app.router.add_post("/v2/templates", self._create)
        app.router.add_patch("/v2/templates/{id}", self._update)
        self._server = ServerThread(app)

    @property
    def url(self) -> str:
        return self._server.url

    def __enter__(self) -> FakeRunPod:
        self._server.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._server.stop()

    def add_template(self, **fields: Any) -> dict[str, Any]:
        """Put a template into the account directly, as if made earlier in the console."""
        template = self._complete(next(self._ids), fields)
        self.templates[template["id"]] = template
        return template

    # --- middlewares: record → authenticate → scripted answers ---------------------------------
    @web.middleware
    async def _record(self, request: web.Request, handler: Any) -> web.StreamResponse:
        body = await request.json() if request.can_read_body else None
        self.requests.append(
            Recorded(request.method, request.path, request.headers.get("Authorization"), body)
        )
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _authenticate(self, request: web.Request, handler: Any) -> web.StreamResponse:
        given = request.headers.get("Authorization", "")
        if not given.startswith("Bearer "):
            return problem(401, "Unauthorized", "missing bearer token")
        if given.removeprefix("Bearer ") != self.api_key:
            return problem(401, "Unauthorized", "invalid api key")
        response: web.StreamResponse = await handler(request)
        return response

    @web.middleware
    async def _script(self, request: web.Request, handler: Any) -> web.StreamResponse:
        if self.scripted:
            answer = self.scripted.pop(0)
            reply = problem(answer.status, "Scripted", answer.detail)
            reply.headers.update(answer.headers)
            return reply
        response: web.StreamResponse = await handler(request)
        return response

    # --- handlers --------------------------------------------------------------------------------
    async def _list(self, _: web.Request) -> web.Response:
        return web.json_response({"templates": list(self.templates.values())})

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        errors = request_errors(body, CREATE_TEMPLATE)
        if errors:
            return problem(422, "Unprocessable Entity", "Request validation failed.", errors)
        if any(t["name"] == body["name"] for t in self.templates.values()):
            return problem(400, "Bad Request", f"template name {body['name']!r} already in use")
        template = self.add_template(**body)
        return web.json_response(template, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        template_id = request.match_info["id"]
        if template_id not in self.templates:
            return problem(404, "Not Found", "template not found")
        body = await request.json()
        errors = request_errors(body, UPDATE_TEMPLATE)
        if errors:
            return problem(422, "Unprocessable Entity", "Request validation failed.", errors)
        name = body.get("name")
        if any(t["name"] == name and i != template_id for i, t in self.templates.items()):
            return problem(400, "Bad Request", f"template name {name!r} already in use")
        self.templates[template_id] = self._complete(
            template_id, {**self.templates[template_id], **body}
        )
        return web.json_response(self.templates[template_id])

    @staticmethod
    def _complete(template_id: str, fields: dict[str, Any]) -> dict[str, Any]:
        """A Template as the API returns it: every field present, create-time defaults applied."""
        defaults: dict[str, Any] = {
            "args": "",
            "disk": 20,
            "mounts": {},
            "ports": [],
            "env": {},
            "registry": None,
            "serverless": False,
            "public": False,
            "category": "NVIDIA",
            "startSsh": True,
            "startJupyter": True,
            "allowedCudaVersions": [],
        }
        return {**defaults, **fields, "id": template_id}
