"""A loopback stand-in for the Hugging Face Hub that serves one repo holding one tiny model.

Used by scripts/image-smoke.sh so a booted container has a real model to fetch without leaving
this machine. It answers the way the Hub does (see shared PROTOCOLS.md, "Hugging Face"): the repo
API lists the file with its LFS sha256, and `resolve/` answers with a 302 carrying
X-Repo-Commit / X-Linked-Etag / X-Linked-Size to an absolute "CDN" URL that serves the bytes,
with Range support.

Usage: python3 fake_hf.py PORT_FILE REPO FILENAME
Binds 127.0.0.1 on a free port, writes that port to PORT_FILE, serves until killed.
"""

from __future__ import annotations

import hashlib
import json
import struct
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

COMMIT = "0123456789abcdef0123456789abcdef01234567"


def tiny_safetensors() -> bytes:
    """A valid safetensors file: one float32 tensor of four zeros."""
    header = {
        "__metadata__": {"format": "pt"},
        "weight": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
    }
    encoded = json.dumps(header).encode()
    encoded += b" " * (-len(encoded) % 8)  # the format pads the header to 8 bytes
    return struct.pack("<Q", len(encoded)) + encoded + b"\0" * 16


def make_handler(repo: str, filename: str, body: bytes) -> type[BaseHTTPRequestHandler]:
    sha256 = hashlib.sha256(body).hexdigest()
    sibling = {
        "rfilename": filename,
        "size": len(body),
        "blobId": hashlib.sha1(body, usedforsecurity=False).hexdigest(),
        "lfs": {"sha256": sha256, "size": len(body)},
    }

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, format: str, *args: object) -> None:
            sys.stderr.write(f"fake-hf: {self.command} {self.path} -> {args[1]}\n")

        def do_HEAD(self) -> None:
            self.route(send_body=False)

        def do_GET(self) -> None:
            self.route(send_body=True)

        def route(self, send_body: bool) -> None:
            path = urlsplit(self.path).path
            api = f"/api/models/{repo}/"
            if path.startswith(api + "revision/"):
                info = {"id": repo, "sha": COMMIT, "siblings": [sibling]}
                return self.send_json(info, send_body)
            if path.startswith(api + "tree/"):
                entry = {
                    "type": "file",
                    "oid": sibling["blobId"],
                    "size": len(body),
                    "path": filename,
                    "lfs": {"oid": sha256, "size": len(body)},
                }
                return self.send_json([entry], send_body)
            if path.startswith(f"/api/models/{repo}"):
                return self.send_json({"id": repo, "sha": COMMIT, "siblings": [sibling]}, send_body)
            if path.startswith(f"/{repo}/resolve/"):
                if not path.endswith("/" + filename):
                    return self.send_error_code(404, "EntryNotFound")
                host = self.headers.get("Host", "127.0.0.1")
                self.send_response(302)
                self.send_header("Location", f"http://{host}/cdn/{sha256}")
                self.send_header("X-Repo-Commit", COMMIT)
                self.send_header("X-Linked-Etag", f'"{sha256}"')
                self.send_header("X-Linked-Size", str(len(body)))
                self.send_header("ETag", f'"{sha256}"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return None
            if path == f"/cdn/{sha256}":
                return self.send_bytes(send_body)
            return self.send_error_code(404, "RepoNotFound")

        def send_bytes(self, send_body: bool) -> None:
            start, end = 0, len(body) - 1
            ranged = self.headers.get("Range", "")
            if ranged.startswith("bytes="):
                first, _, last = ranged[6:].partition("-")
                start = int(first or 0)
                end = min(int(last), end) if last else end
                self.send_response(206)
                self.send_header("Content-Range", f"bytes {start}-{end}/{len(body)}")
            else:
                self.send_response(200)
            self.send_header("Content-Type", "application/octet-stream")
            self.send_header("Content-Length", str(end - start + 1))
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("ETag", f'"{sha256}"')
            self.end_headers()
            if send_body:
                self.wfile.write(body[start : end + 1])

        def send_json(self, payload: object, send_body: bool) -> None:
            data = json.dumps(payload).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if send_body:
                self.wfile.write(data)

        def send_error_code(self, status: int, code: str) -> None:
            data = json.dumps({"error": code}).encode()
            self.send_response(status)
            self.send_header("X-Error-Code", code)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

    return Handler


def main() -> None:
    port_file, repo, filename = sys.argv[1:4]
    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(repo, filename, tiny_safetensors()))
    Path(port_file).write_text(str(server.server_address[1]))
    server.serve_forever()


if __name__ == "__main__":
    main()
