"""A small stand-in for ComfyUI's main.py, run by the real supervisor in tests.

Behaves like ComfyUI where the supervisor can tell: rejects unknown flags (exit 2), serves
GET /system_stats once "booted", lists model files like GET /models/<folder> and
/object_info/CheckpointLoaderSimple, and honours `$__COMFY_CLI_SESSION__` like ComfyUI-Manager.

Commands for tests:
    POST /standin/exit?code=N         exit with code N (a crash)
    POST /standin/reboot              touch $__COMFY_CLI_SESSION__.reboot and exit 0 (Manager)
    <base>/standin-crash (a file)     exit at start with the code written in it (a crash loop)
    STANDIN_READY_DELAY_S=seconds     boot time before /system_stats answers (default 0.2)
    STANDIN_SPAWN_GRANDCHILD=1        start a helper process (must not outlive a stop)
    STANDIN_ECHO_ENV=A,B              print these env vars (to test masking and what is passed)
"""

import json
import os
import subprocess
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import yaml
from comfy.cli_args import parser
from custom_nodes_loader import load_custom_nodes, object_info

WEIGHTS = (".safetensors", ".ckpt", ".pt", ".pth", ".bin", ".sft")


def main() -> None:
    args = parser.parse_args()
    base = Path(args.base_directory)
    print(f"standin argv: {json.dumps(sys.argv[1:])}", flush=True)
    for name in filter(None, os.environ.get("STANDIN_ECHO_ENV", "").split(",")):
        print(f"env {name}={os.environ.get(name, '(unset)')}", flush=True)

    crash = base / "standin-crash"
    if crash.exists():
        print("standin: crashing at start as asked", flush=True)
        sys.exit(int(crash.read_text().strip() or "1"))
    if os.environ.get("STANDIN_SPAWN_GRANDCHILD") == "1":
        helper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"])
        print(f"standin grandchild pid {helper.pid}", flush=True)

    nodes = load_custom_nodes(base)
    time.sleep(float(os.environ.get("STANDIN_READY_DELAY_S", "0.2")))
    host = "0.0.0.0" if args.listen in ("0.0.0.0", "0.0.0.0,::") else args.listen
    server = ThreadingHTTPServer((host, args.port), _handler(args, base, nodes))
    print(f"To see the GUI go to: http://{args.listen}:{args.port}", flush=True)
    server.serve_forever()


def _model_roots(args, base: Path, folder: str) -> list[Path]:
    """models/<folder>, plus each --extra-model-paths-config section's paths for it."""
    roots = [base / "models" / folder]
    for group in args.extra_model_paths_config:
        for config in group:
            for section in (yaml.safe_load(Path(config).read_text()) or {}).values():
                for line in str(section.get(folder, "")).splitlines():
                    if line.strip():
                        roots.append(Path(section["base_path"]) / line.strip())
    return roots


def _handler(args, base: Path, nodes: dict) -> type:
    def models(folder: str) -> list[str]:
        roots = [r for r in _model_roots(args, base, folder) if r.is_dir()]
        return sorted({p.name for r in roots for p in r.iterdir() if p.suffix in WEIGHTS})

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *_: object) -> None:
            pass

        def _json(self, body: object, status: int = 200) -> None:
            data = json.dumps(body).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:
            path = urlparse(self.path).path
            if path == "/system_stats":
                self._json({"system": {"os": "standin", "pid": os.getpid(), "argv": sys.argv}})
            elif path.startswith("/models/"):
                self._json(models(path.removeprefix("/models/")))
            elif path == "/object_info/CheckpointLoaderSimple":
                choices = [models("checkpoints")]
                node = {"input": {"required": {"ckpt_name": choices}}}
                self._json({"CheckpointLoaderSimple": node})
            elif path.startswith("/object_info"):  # custom nodes (custom_nodes_loader.py)
                self._json(object_info(nodes, path.removeprefix("/object_info").strip("/")))
            else:
                self._json({"error": "not found"}, 404)

        def do_POST(self) -> None:
            url = urlparse(self.path)
            if url.path == "/standin/exit":
                code = int(parse_qs(url.query).get("code", ["1"])[0])
                self._json({"exiting": code})
                _exit_soon(code)
            elif url.path == "/standin/reboot":
                Path(os.environ["__COMFY_CLI_SESSION__"] + ".reboot").touch()
                self._json({"rebooting": True})
                _exit_soon(0)
            else:
                self._json({"error": "not found"}, 404)

    return Handler


def _exit_soon(code: int) -> None:
    threading.Timer(0.05, os._exit, [code]).start()


if __name__ == "__main__":
    main()
