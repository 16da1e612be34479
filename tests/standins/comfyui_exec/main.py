"""An executing ComfyUI stand-in (aiohttp), for the serverless worker's tests and benchmark.

Run by the real supervisor as `main.py --base-directory … --listen … --port …` (the flags of the
plain stand-in, whose parser it shares). Speaks ComfyUI's API where the worker can tell:

    POST /prompt           validates like ComfyUI (400 with `error` + `node_errors`), queues
    GET  /ws?clientId=     status, execution_start, execution_cached, executing, progress,
                           executed, execution_success / execution_error / execution_interrupted
    GET  /history/{id}     outputs of every output node, cached ones included
    GET  /view             a file from output/, temp/ or input/
    POST /upload/image     multipart `image` (+ subfolder, overwrite) into input/
    POST /interrupt        stops the running prompt at its next sampler step
    GET  /object_info[/C]  the stand-in node classes (nodes.py)
    GET  /system_stats, /models/{folder}

Node results are cached like ComfyUI's default cache: a node whose class, literal inputs and
upstream results are unchanged since the previous prompt is not run again, and its UI output
(the file names it reported then) is reused in the history. A `StandinCrash` node kills the
process mid-prompt (a crashed ComfyUI); a file `<base>/standin-crash` makes it exit at start
with the code written in it (a ComfyUI that cannot come up).
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import os
import sys
import uuid
from pathlib import Path
from typing import Any

import yaml
from aiohttp import web

# The plain stand-in's argument parser (the flags the supervisor passes), shared, not copied.
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "comfyui"))
from comfy.cli_args import parser
from nodes import NODES, Context, Interrupted, models_in


class Server:
    def __init__(self, args: Any) -> None:
        self.args = args
        self.base = Path(args.base_directory)
        self.sockets: dict[str, web.WebSocketResponse] = {}
        self.queue: asyncio.Queue[tuple[str, dict[str, Any], str | None]] = asyncio.Queue()
        self.history: dict[str, dict[str, Any]] = {}
        self.cache: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
        self.interrupt = False
        self.number = 0

    # --- helpers ---------------------------------------------------------------------------

    def model_roots(self, folder: str) -> list[Path]:
        roots = [self.base / "models" / folder]
        for group in self.args.extra_model_paths_config:
            for config in group:
                for section in (yaml.safe_load(Path(config).read_text()) or {}).values():
                    for line in str(section.get(folder, "")).splitlines():
                        if line.strip():
                            roots.append(Path(section["base_path"]) / line.strip())
        return roots

    def context(self, prompt_id: str, node_id: str, client: str | None) -> Context:
        async def progress(value: int, maximum: int) -> None:
            data = {"value": value, "max": maximum, "prompt_id": prompt_id, "node": node_id}
            await self.send(client, "progress", data)

        return Context(self.base, self.model_roots, progress, lambda: self.interrupt)

    async def send(self, client: str | None, kind: str, data: dict[str, Any]) -> None:
        targets = [self.sockets[client]] if client in self.sockets else []
        if client is None:
            targets = list(self.sockets.values())
        for socket in targets:
            if not socket.closed:
                await socket.send_json({"type": kind, "data": data})

    def node_info(self, name: str) -> dict[str, Any]:
        node = NODES[name]
        required = node.required(self.context("", "", None))
        return {
            "input": {"required": required},
            "input_order": {"required": list(required)},
            "output": list(node.returns),
            "output_is_list": [False] * len(node.returns),
            "output_name": list(node.returns),
            "name": name,
            "display_name": name,
            "category": "standin",
            "output_node": node.output_node,
        }

    # --- validation (ComfyUI's /prompt answers) ----------------------------------------------

    def validate(self, prompt: dict[str, Any]) -> dict[str, Any] | None:
        for node_id, node in prompt.items():
            cls = node.get("class_type") if isinstance(node, dict) else None
            if cls not in NODES:
                title = (
                    (node.get("_meta") or {}).get("title", cls) if isinstance(node, dict) else cls
                )
                return {
                    "error": {
                        "type": "missing_node_type",
                        "message": f"Node '{title}' not found. "
                        "The custom node may not be installed.",
                        "details": f"Node ID '#{node_id}'",
                        "extra_info": {"node_id": node_id, "class_type": cls, "node_title": title},
                    },
                    "node_errors": {},
                }
        outputs = [i for i, n in prompt.items() if NODES[n["class_type"]].output_node]
        if not outputs:
            error = {"type": "prompt_no_outputs", "message": "Prompt has no outputs"}
            return {"error": {**error, "details": "", "extra_info": {}}, "node_errors": {}}
        node_errors: dict[str, Any] = {}
        for node_id, node in prompt.items():
            errors = self._input_errors(node)
            if errors:
                node_errors[node_id] = {
                    "errors": errors,
                    "dependent_outputs": outputs,
                    "class_type": node["class_type"],
                }
        if not node_errors:
            return None
        error = {
            "type": "prompt_outputs_failed_validation",
            "message": "Prompt outputs failed validation",
        }
        return {"error": {**error, "details": "", "extra_info": {}}, "node_errors": node_errors}

    def _input_errors(self, node: dict[str, Any]) -> list[dict[str, Any]]:
        spec = NODES[node["class_type"]].required(self.context("", "", None))
        inputs = node.get("inputs") or {}
        errors = []
        for name, config in spec.items():
            if name not in inputs:
                errors.append(
                    {
                        "type": "required_input_missing",
                        "message": "Required input is missing",
                        "details": name,
                        "extra_info": {"input_name": name},
                    }
                )
                continue
            value = inputs[name]
            if (
                isinstance(config[0], list)
                and not isinstance(value, list)
                and value not in config[0]
            ):
                errors.append(
                    {
                        "type": "value_not_in_list",
                        "message": "Value not in list",
                        "details": f"{name}: '{value}' not in {config[0]}",
                        "extra_info": {
                            "input_name": name,
                            "input_config": config,
                            "received_value": value,
                        },
                    }
                )
        return errors

    # --- execution -----------------------------------------------------------------------------

    async def worker(self) -> None:
        while True:
            prompt_id, prompt, client = await self.queue.get()
            self.interrupt = False
            await self.execute(prompt_id, prompt, client)

    async def execute(self, prompt_id: str, prompt: dict[str, Any], client: str | None) -> None:
        await self.send(client, "execution_start", {"prompt_id": prompt_id})
        order = _order(prompt)
        signatures = _signatures(prompt, order, self.base)
        cached = [n for n in order if signatures[n] in self.cache]
        await self.send(client, "execution_cached", {"nodes": cached, "prompt_id": prompt_id})
        results: dict[str, tuple[Any, ...]] = {}
        ui_outputs: dict[str, Any] = {}
        fresh: dict[str, tuple[tuple[Any, ...], dict[str, Any] | None]] = {}
        status = "success"
        for node_id in order:
            node = prompt[node_id]
            signature = signatures[node_id]
            if signature in self.cache:
                outputs, ui = self.cache[signature]
            else:
                msg = {"node": node_id, "display_node": node_id, "prompt_id": prompt_id}
                await self.send(client, "executing", msg)
                inputs = {
                    k: results[v[0]][v[1]] if _is_link(v) else v
                    for k, v in node.get("inputs", {}).items()
                }
                context = self.context(prompt_id, node_id, client)
                try:
                    outputs, ui = await NODES[node["class_type"]].run(context, inputs)
                except Interrupted:
                    status = "error"
                    data = {
                        "prompt_id": prompt_id,
                        "node_id": node_id,
                        "node_type": node["class_type"],
                        "executed": list(results),
                    }
                    await self.send(client, "execution_interrupted", data)
                    break
                except Exception as error:  # a node's failure, reported as ComfyUI does
                    status = "error"
                    data = {
                        "prompt_id": prompt_id,
                        "node_id": node_id,
                        "node_type": node["class_type"],
                        "executed": list(results),
                        "exception_message": str(error),
                        "exception_type": type(error).__name__,
                        "traceback": [],
                    }
                    await self.send(client, "execution_error", data)
                    break
                if ui is not None:
                    msg = {
                        "node": node_id,
                        "display_node": node_id,
                        "output": ui,
                        "prompt_id": prompt_id,
                    }
                    await self.send(client, "executed", msg)
            fresh[signature] = (outputs, ui)
            results[node_id] = outputs
            if ui is not None:
                ui_outputs[node_id] = ui
        # Like ComfyUI's classic cache: what the last prompt used stays, the rest is dropped.
        self.cache = fresh
        self.history[prompt_id] = {
            "prompt": [self.number, prompt_id, prompt, {}, []],
            "outputs": ui_outputs,
            "status": {"status_str": status, "completed": status == "success", "messages": []},
        }
        if status == "success":
            await self.send(client, "execution_success", {"prompt_id": prompt_id})
        await self.send(client, "executing", {"node": None, "prompt_id": prompt_id})

    # --- routes ---------------------------------------------------------------------------------

    async def post_prompt(self, request: web.Request) -> web.Response:
        body = await request.json()
        prompt = body.get("prompt")
        if not isinstance(prompt, dict):
            error = {
                "type": "invalid_prompt",
                "message": "Invalid prompt",
                "details": "",
                "extra_info": {},
            }
            return web.json_response({"error": error, "node_errors": {}}, status=400)
        problem = self.validate(prompt)
        if problem is not None:
            return web.json_response(problem, status=400)
        prompt_id = body.get("prompt_id") or str(uuid.uuid4())
        self.number += 1
        await self.queue.put((prompt_id, prompt, body.get("client_id")))
        return web.json_response({"prompt_id": prompt_id, "number": self.number, "node_errors": {}})

    async def websocket(self, request: web.Request) -> web.WebSocketResponse:
        socket = web.WebSocketResponse()
        await socket.prepare(request)
        sid = request.query.get("clientId") or uuid.uuid4().hex
        self.sockets[sid] = socket
        status = {"status": {"exec_info": {"queue_remaining": self.queue.qsize()}}, "sid": sid}
        await socket.send_json({"type": "status", "data": status})
        async for _ in socket:
            pass
        self.sockets.pop(sid, None)
        return socket

    async def get_history(self, request: web.Request) -> web.Response:
        prompt_id = request.match_info["id"]
        entry = self.history.get(prompt_id)
        return web.json_response({prompt_id: entry} if entry else {})

    async def view(self, request: web.Request) -> web.StreamResponse:
        query = request.query
        kind = query.get("type", "output")
        path = self.base / kind / query.get("subfolder", "") / query.get("filename", "")
        if kind not in {"output", "temp", "input"} or ".." in path.parts or not path.is_file():
            return web.json_response({"error": "not found"}, status=404)
        return web.FileResponse(path)

    async def upload_image(self, request: web.Request) -> web.Response:
        form = await request.post()
        image = form.get("image")
        if not isinstance(image, web.FileField):
            return web.Response(status=400)
        subfolder = str(form.get("subfolder", ""))
        folder = self.base / "input" / subfolder
        folder.mkdir(parents=True, exist_ok=True)
        (folder / Path(image.filename).name).write_bytes(image.file.read())
        return web.json_response(
            {"name": Path(image.filename).name, "subfolder": subfolder, "type": "input"}
        )

    async def post_interrupt(self, _request: web.Request) -> web.Response:
        self.interrupt = True
        return web.Response()

    async def object_info(self, request: web.Request) -> web.Response:
        name = request.match_info.get("name")
        names = [name] if name else list(NODES)
        return web.json_response({n: self.node_info(n) for n in names if n in NODES})

    async def system_stats(self, _request: web.Request) -> web.Response:
        return web.json_response(
            {"system": {"os": "standin-exec", "pid": os.getpid(), "argv": sys.argv}}
        )

    async def models(self, request: web.Request) -> web.Response:
        context = self.context("", "", None)
        return web.json_response(models_in(context, request.match_info["folder"]))


def _is_link(value: Any) -> bool:
    return isinstance(value, list) and len(value) == 2 and isinstance(value[0], str)


def _order(prompt: dict[str, Any]) -> list[str]:
    """Every node the output nodes need, each after its inputs."""
    order: list[str] = []

    def visit(node_id: str) -> None:
        if node_id in order:
            return
        for value in prompt[node_id].get("inputs", {}).values():
            if _is_link(value):
                visit(value[0])
        order.append(node_id)

    for node_id, node in prompt.items():
        if NODES[node["class_type"]].output_node:
            visit(node_id)
    return order


def _signatures(prompt: dict[str, Any], order: list[str], base: Path) -> dict[str, str]:
    """A node's cache key: its class, literal inputs and its inputs' keys (ComfyUI's idea)."""
    signatures: dict[str, str] = {}
    for node_id in order:
        node = prompt[node_id]
        parts: list[Any] = [node["class_type"]]
        for name, value in sorted(node.get("inputs", {}).items()):
            parts.append(
                [name, signatures[value[0]] + f":{value[1]}" if _is_link(value) else value]
            )
        if node["class_type"] == "LoadImage":  # IS_CHANGED: the file's content
            path = base / "input" / str(node["inputs"].get("image"))
            parts.append(hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else "")
        signatures[node_id] = hashlib.sha256(json.dumps(parts, default=str).encode()).hexdigest()
    return signatures


async def serve(args: Any) -> None:
    server = Server(args)
    app = web.Application(client_max_size=256 * 1024 * 1024)
    app.router.add_post("/prompt", server.post_prompt)
    app.router.add_get("/ws", server.websocket)
    app.router.add_get("/history/{id}", server.get_history)
    app.router.add_get("/view", server.view)
    app.router.add_post("/upload/image", server.upload_image)
    app.router.add_post("/interrupt", server.post_interrupt)
    app.router.add_get("/object_info", server.object_info)
    app.router.add_get("/object_info/{name}", server.object_info)
    app.router.add_get("/system_stats", server.system_stats)
    app.router.add_get("/models/{folder}", server.models)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, args.listen, args.port).start()
    print(f"To see the GUI go to: http://{args.listen}:{args.port}", flush=True)
    await server.worker()


def main() -> None:
    args = parser.parse_args()
    print(f"standin argv: {json.dumps(sys.argv[1:])}", flush=True)
    crash = Path(args.base_directory) / "standin-crash"
    if crash.exists():  # a ComfyUI that cannot start (the plain stand-in's switch)
        print("standin: crashing at start as asked", flush=True)
        sys.exit(int(crash.read_text().strip() or "1"))
    asyncio.run(serve(args))


if __name__ == "__main__":
    main()
