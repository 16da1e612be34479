"""A real git server on loopback: git's smart HTTP through `git http-backend`, as GitHub speaks it.

A tiny CGI bridge in http.server hands every request to `git http-backend` (GIT_PROJECT_ROOT,
GIT_HTTP_EXPORT_ALL), so shallow clones and fetch-by-sha behave exactly as the real protocol
does. Repos are made with `make_repo` (real commits, tags). Requests and the Authorization
headers seen are counted; `private` repos answer 401 without the expected token.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

_GIT_ENV = {
    "GIT_AUTHOR_NAME": "t",
    "GIT_AUTHOR_EMAIL": "t@example.invalid",
    "GIT_COMMITTER_NAME": "t",
    "GIT_COMMITTER_EMAIL": "t@example.invalid",
    "GIT_CONFIG_NOSYSTEM": "1",
    "HOME": "/nonexistent",
}


def git(*args: str, cwd: Path) -> str:
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), **_GIT_ENV}
    done = subprocess.run(
        ["git", *args], cwd=cwd, env=env, check=True, capture_output=True, text=True
    )
    return done.stdout.strip()


class GitServer:
    def __init__(self, root: Path, host: str = "127.0.0.1") -> None:
        self.root = root
        root.mkdir(parents=True, exist_ok=True)
        self.requests: Counter[str] = Counter()
        self.authorization_seen: list[str] = []
        self.private: dict[str, str] = {}  # repo name → the token it wants
        self.delay_s = 0.0  # before answering each pack request: a slow clone
        self._server = ThreadingHTTPServer((host, 0), self._handler())
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> GitServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._server.shutdown()
        self._server.server_close()

    @property
    def total_requests(self) -> int:
        return sum(self.requests.values())

    def make_repo(
        self, name: str, commits: list[dict[str, str]], tags: dict[int, str] | None = None
    ) -> list[str]:
        """A bare repo at `<url>/<name>` (owner/repo; no `.git` needed, as on GitHub) with one
        commit per dict of files, each on top of the previous; `tags` maps a commit index to a
        tag. Returns the commit shas."""
        work = self.root / ".work" / name
        work.mkdir(parents=True)
        git("init", "-q", "-b", "main", cwd=work)
        shas: list[str] = []
        for files in commits:
            for path, content in files.items():
                (work / path).parent.mkdir(parents=True, exist_ok=True)
                (work / path).write_text(content)
            git("add", "-A", cwd=work)
            git("commit", "-q", "-m", f"commit {len(shas)}", cwd=work)
            shas.append(git("rev-parse", "HEAD", cwd=work))
        for index, tag in (tags or {}).items():
            git("tag", "-a", tag, "-m", tag, shas[index], cwd=work)
        bare = self.root / name
        git("clone", "-q", "--bare", str(work), str(bare), cwd=self.root)
        git("config", "uploadpack.allowReachableSHA1InWant", "true", cwd=bare)
        git("config", "uploadpack.allowAnySHA1InWant", "true", cwd=bare)
        return shas

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: object) -> None:
                pass

            def do_GET(self) -> None:
                self._cgi()

            def do_POST(self) -> None:
                self._cgi()

            def _cgi(self) -> None:
                path, _, query = self.path.partition("?")
                server.requests[path] += 1
                auth = self.headers.get("Authorization")
                if auth:
                    server.authorization_seen.append(auth)
                repo = "/".join(path.lstrip("/").split("/")[:2])
                wanted = server.private.get(repo)
                if wanted is not None and auth != _basic(wanted):
                    self.send_response(401)
                    self.send_header("WWW-Authenticate", 'Basic realm="git"')
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    return
                if path.endswith("/git-upload-pack"):
                    time.sleep(server.delay_s)
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                env = {
                    "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                    "GIT_PROJECT_ROOT": str(server.root),
                    "GIT_HTTP_EXPORT_ALL": "1",
                    "REQUEST_METHOD": self.command,
                    "PATH_INFO": path,
                    "QUERY_STRING": query,
                    "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                    "CONTENT_LENGTH": str(len(body)),
                    "HTTP_CONTENT_ENCODING": self.headers.get("Content-Encoding", ""),
                    "GIT_PROTOCOL": self.headers.get("Git-Protocol", ""),
                    "REMOTE_ADDR": "127.0.0.1",
                }
                done = subprocess.run(
                    ["git", "http-backend"], input=body, env=env, capture_output=True
                )
                head, _, payload = done.stdout.partition(b"\r\n\r\n")
                status = 200
                headers: list[tuple[str, str]] = []
                for line in head.decode("latin-1").split("\r\n"):
                    key, _, value = line.partition(":")
                    if key.lower() == "status":
                        status = int(value.strip().split()[0])
                    elif key:
                        headers.append((key, value.strip()))
                self.send_response(status)
                for key, value in headers:
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        return Handler


def _basic(token: str) -> str:
    return "Basic " + base64.b64encode(f"x-access-token:{token}".encode()).decode()
